/**
 * The SDK's front door: a `Client` (every route, typed) with the original library's verbs on
 * top, and `connect()`, which finds the control plane as the `butter` command does.
 */
import { Client, type ClientOptions } from './node-client.ts';
import { loadConfig } from './config.ts';
import { NetworkVerbs } from './networks.ts';
import { PathVerbs } from './paths.ts';
import { ServiceVerbs } from './services.ts';
import { EventVerbs } from './events.ts';
import { graph, type Graph, type GraphOptions } from './graph.ts';

export class Butter extends Client {
  /** `create(name, opts)`, `get(name)`, `list()`, `destroy(name)`. */
  readonly network: NetworkVerbs;
  /** `create(network, name, { blueprint, vars })`, `get`, `list`, `getInstances`, `destroy`, `scale`, `update`, `rollback`, `history`, `wait`. */
  readonly service: ServiceVerbs;
  /** `add(from, to, port)`, `remove`, `list`, `check`, `hasAccess`, `internetAccessible`. */
  readonly paths: PathVerbs;
  /** `stream({ since, resource, name, signal })`: every change, live, resuming by itself. */
  readonly events: EventVerbs;

  constructor(opts: ClientOptions) {
    super(opts);
    this.events = new EventVerbs(this);
    this.network = new NetworkVerbs(this);
    this.service = new ServiceVerbs(this);
    this.paths = new PathVerbs(this);
  }

  /** Who may reach whom: DOT text (as the original's `graph()`), `{ format: 'svg' }` drawn, `{ format: 'json' }` the Graph object; `network` for one. */
  graph(opts: GraphOptions & { format: 'json' }): Promise<Graph>;
  graph(opts?: GraphOptions & { format?: 'dot' | 'svg' }): Promise<string>;
  graph(opts: GraphOptions & { format?: 'json' | 'dot' | 'svg' } = {}): Promise<Graph | string> {
    return graph(this, opts);
  }
}

/**
 * A client of the given control plane; with no `url`, of the one the `butter` command uses:
 * `BUTTER_URL`, `BUTTER_TOKEN` and `BUTTER_CA` (a PEM file), else what `butter login` or
 * `butter up` saved in `$XDG_CONFIG_HOME/butter/config.json` (`~/.config/butter/`): URL,
 * token and pinned CA. A `token` or `ca` given with no `url` replaces the saved one.
 */
export function connect(opts: Partial<ClientOptions> = {}): Butter {
  if (opts.url) return new Butter({ url: opts.url, ...(opts.token ? { token: opts.token } : {}), ...(opts.ca ? { ca: opts.ca } : {}) });
  const saved = loadConfig();
  if (!saved) throw new Error('no control plane: pass { url, token }, set BUTTER_URL and BUTTER_TOKEN, or run `butter login URL --token TOKEN`');
  return new Butter({ ...saved, ...(opts.token ? { token: opts.token } : {}), ...(opts.ca ? { ca: opts.ca } : {}) });
}
