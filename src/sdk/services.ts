/**
 * The original Butter library's service verbs (`client.service.create(network, name,
 * { blueprint, vars })`, get, list, destroy, getInstances; and Butter's scale, update,
 * rollback, history) over the typed routes. A blueprint is a path (read here with the
 * templates it names, relative to it: blueprint-bundle.ts, as the CLI reads one) or its text.
 * The control plane answers a create, scale or rollout at once; `wait` polls until it has
 * settled, as `butter service ... --wait` does.
 */
import type { BodyOf, ResponseOf } from '../api/routes.ts';
import { loadBundle } from './blueprint-bundle.ts';
import { ButterError, type Client } from './client.ts';

export type Service = ResponseOf<'getService'>;
export type ServiceInstance = Service['instances'][number];
export type ServiceRevision = ResponseOf<'listServiceRevisions'>['items'][number];
export type ServiceVars = NonNullable<BodyOf<'createService'>['vars']>;

/**
 * A blueprint file's path (its templates are read relative to it), or the blueprint itself:
 * its YAML `text`, the `files` its `initialization` names (path as written there -> text)
 * and, for messages, a `file` name.
 */
export type BlueprintSource = string | { text: string; files?: Record<string, string>; file?: string };

export interface WaitOptions {
  /** How long to wait before giving up with an error (default 10 min). */
  timeoutMs?: number;
}

export interface ServiceCreateOptions {
  blueprint: BlueprintSource;
  /** The templates' variables (the original's `template_vars`): strings, numbers, lists, maps. */
  vars?: ServiceVars;
  /** Instances (default: the blueprint's `count`, else `placement.availability_zones`). */
  count?: number;
  /** Place even when fewer zones exist than `placement.availability_zones` (the service carries a warning). */
  force?: boolean;
  /** Return once every instance is running (or throw naming the one that failed). */
  wait?: boolean | WaitOptions;
  /** Makes a retry of the same create safe; one is made per call otherwise. */
  idempotencyKey?: string;
}

export interface ServiceUpdateOptions {
  blueprint: BlueprintSource;
  vars?: ServiceVars;
  /** Return once the rollout is done (or throw when it stopped at a failing instance). */
  wait?: boolean | WaitOptions;
}

/** A service, or its name. */
export type ServiceRef = string | { name: string };
type NetworkRef = string | { name: string };

const nameOf = (x: ServiceRef | NetworkRef): string => (typeof x === 'string' ? x : x.name);

/** A wait that ended without the service settling: its rollout stopped, an instance failed, or time ran out. */
export class ServiceNotSettled extends Error {
  override name = 'ServiceNotSettled';
  constructor(
    message: string,
    /** The service as last seen. */
    readonly service: Service,
  ) {
    super(message);
  }
}

const DEFAULT_WAIT_MS = 10 * 60_000;
const POLL_MS = 250;

function content(source: BlueprintSource): { blueprint: string; file?: string; files: Record<string, string> } {
  if (typeof source === 'string') {
    const b = loadBundle(source);
    return { blueprint: b.blueprint, file: b.file, files: b.files };
  }
  return { blueprint: source.text, files: source.files ?? {}, ...(source.file !== undefined ? { file: source.file } : {}) };
}

const waitMs = (w: boolean | WaitOptions | undefined): number | undefined => (w === undefined || w === false ? undefined : w === true ? DEFAULT_WAIT_MS : (w.timeoutMs ?? DEFAULT_WAIT_MS));

export class ServiceVerbs {
  constructor(private readonly client: Client) {}

  /**
   * Creates the service in `network`: its address block and all its instances at once, every
   * input checked first (a bad blueprint, a missing variable, too few zones: a `ButterError`
   * naming the field, and nothing made).
   */
  async create(network: NetworkRef, name: string, opts: ServiceCreateOptions): Promise<Service> {
    const body = {
      network: nameOf(network),
      name,
      ...content(opts.blueprint),
      vars: opts.vars ?? {},
      ...(opts.count !== undefined ? { count: opts.count } : {}),
      ...(opts.force ? { force: true } : {}),
    };
    const made = await this.client.call('createService', { body, ...(opts.idempotencyKey ? { idempotencyKey: opts.idempotencyKey } : {}) });
    const ms = waitMs(opts.wait);
    return ms === undefined ? made : this.wait(made.name, { timeoutMs: ms });
  }

  /**
   * The service, or undefined when there is none of that name (as the original's None); other
   * errors throw. With a network first, as the original takes it, one in another network is none.
   */
  get(name: string): Promise<Service | undefined>;
  get(network: NetworkRef, name: string): Promise<Service | undefined>;
  async get(a: NetworkRef, b?: string): Promise<Service | undefined> {
    const [network, name] = b === undefined ? [undefined, nameOf(a)] : [nameOf(a), b];
    try {
      const s = await this.client.call('getService', { params: { name } });
      return network === undefined || s.network === network ? s : undefined;
    } catch (e) {
      if (e instanceof ButterError && e.status === 404) return undefined;
      throw e;
    }
  }

  /** Every service, or those of one network. */
  async list(network?: NetworkRef): Promise<Service[]> {
    return (await this.client.call('listServices', { query: network === undefined ? {} : { network: nameOf(network) } })).items;
  }

  /** Its instances as they are now (name, index, node, zone, ip, state, revision). */
  async getInstances(service: ServiceRef): Promise<ServiceInstance[]> {
    return (await this.client.call('getService', { params: { name: nameOf(service) } })).instances;
  }

  /** Deletes its instances, then it; with `wait`, returns once it is gone. */
  async destroy(service: ServiceRef, opts: { wait?: boolean | WaitOptions } = {}): Promise<void> {
    const name = nameOf(service);
    await this.client.call('deleteService', { params: { name } });
    const ms = waitMs(opts.wait);
    if (ms === undefined) return;
    const end = Date.now() + ms;
    for (;;) {
      const s = await this.get(name);
      if (!s) return;
      if (Date.now() > end) throw new ServiceNotSettled(`timed out after ${ms} ms waiting for service ${name} to go (${s.instances.length} instance(s) left)`, s);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  /** Sets the number of instances (new ones keep the spread; the newest go first). */
  async scale(service: ServiceRef, count: number, opts: { wait?: boolean | WaitOptions } = {}): Promise<Service> {
    const s = await this.client.call('scaleService', { params: { name: nameOf(service) }, body: { count } });
    const ms = waitMs(opts.wait);
    return ms === undefined ? s : this.wait(s.name, { timeoutMs: ms });
  }

  /** A new revision, rolled out one instance at a time; the same blueprint, variables and image again change nothing. */
  async update(service: ServiceRef, opts: ServiceUpdateOptions): Promise<Service> {
    const s = await this.client.call('updateService', { params: { name: nameOf(service) }, body: { ...content(opts.blueprint), vars: opts.vars ?? {} } });
    const ms = waitMs(opts.wait);
    return ms === undefined ? s : this.wait(s.name, { timeoutMs: ms });
  }

  /** Rolls back to revision `to` (default: the one before), one instance at a time. */
  async rollback(service: ServiceRef, opts: { to?: number; wait?: boolean | WaitOptions } = {}): Promise<Service> {
    const s = await this.client.call('rollbackService', { params: { name: nameOf(service) }, body: opts.to !== undefined ? { to: opts.to } : {} });
    const ms = waitMs(opts.wait);
    return ms === undefined ? s : this.wait(s.name, { timeoutMs: ms });
  }

  /** Its revisions, newest first (with their variables: operators only). */
  async history(service: ServiceRef): Promise<ServiceRevision[]> {
    return (await this.client.call('listServiceRevisions', { params: { name: nameOf(service) } })).items;
  }

  /**
   * Polls until the rollout is done and every instance runs. A rollout that stopped, an
   * instance in `error` once the rollout is done, or the deadline throw `ServiceNotSettled`.
   */
  async wait(service: ServiceRef, opts: WaitOptions = {}): Promise<Service> {
    const name = nameOf(service);
    const ms = opts.timeoutMs ?? DEFAULT_WAIT_MS;
    const end = Date.now() + ms;
    for (;;) {
      const s = await this.client.call('getService', { params: { name } });
      const running = s.instances.filter((i) => i.state === 'running').length;
      if (s.rollout.state === 'failed') throw new ServiceNotSettled(`service ${name}: rollout to revision ${s.targetRevision} ${s.rollout.message ?? 'failed'}`, s);
      const broken = s.rollout.state === 'done' ? s.instances.find((i) => i.state === 'error') : undefined;
      if (broken) throw new ServiceNotSettled(`service ${name}: instance ${broken.name} failed: ${broken.reason ?? 'unknown reason'}`, s);
      if (s.rollout.state === 'done' && s.instances.length === s.count && running === s.count) return s;
      if (Date.now() > end) throw new ServiceNotSettled(`timed out after ${ms} ms waiting for service ${name} (${running}/${s.count} running, rollout ${s.rollout.state})`, s);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}
