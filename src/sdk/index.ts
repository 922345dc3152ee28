/**
 * `butter/sdk`: the public surface of the SDK package entry (package.json `exports`).
 *
 *     import { connect } from 'butter/sdk';
 *     const butter = connect(); // as the `butter` command: env, else its saved login
 *     await butter.network.create('dev');
 *     await butter.service.create('dev', 'web', { blueprint: 'web/blueprint.yml', vars: { Port: 80 }, wait: true });
 */
export { connect, Butter } from './connect.ts';
export { Client, ButterError, type ClientOptions } from './node-client.ts';
export { NetworkVerbs, type Network, type NetworkOptions } from './networks.ts';
export {
  ServiceVerbs,
  ServiceNotSettled,
  type Service,
  type ServiceInstance,
  type ServiceRevision,
  type ServiceVars,
  type ServiceRef,
  type BlueprintSource,
  type ServiceCreateOptions,
  type ServiceUpdateOptions,
  type WaitOptions,
} from './services.ts';
export { PathVerbs, INTERNET, type Path, type PathCheck, type PathVerifyReport, type PathEnd, type PortRef, type PathAddOptions } from './paths.ts';
export { type Graph, type GraphOptions } from './graph.ts';
export { EventVerbs, type LiveEvent, type EventStreamOptions } from './events.ts';
export { loadBundle, type Bundle } from './blueprint-bundle.ts';
export { retry, httpGet, endpoint, consoleOutput, type BlueprintFixture, type SetupInfo, type TestContext, type RetryOptions, type HttpOptions, type HttpAnswer } from './testing.ts';
export { loadConfig, configFile, type CliConfig } from './config.ts';
export type { RouteId, BodyOf, ResponseOf, ParamsOf, QueryOf } from '../api/routes.ts';
