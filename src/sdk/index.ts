/**
 * `butter/sdk`: the public surface of the SDK package entry (package.json `exports`).
 *
 *     import { connect } from 'butter/sdk';
 *     const butter = connect(); // as the `butter` command: env, else its saved login
 *     await butter.network.create('dev');
 */
export { connect, Butter } from './connect.ts';
export { Client, ButterError, type ClientOptions } from './client.ts';
export { NetworkVerbs, type Network, type NetworkOptions } from './networks.ts';
export { loadConfig, configFile, type CliConfig } from './config.ts';
export type { RouteId, BodyOf, ResponseOf, ParamsOf, QueryOf } from '../api/routes.ts';
