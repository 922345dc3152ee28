/**
 * The blueprint tester's interface (`butter test DIR`), after the original's
 * `cloudless.testutils.fixture.BlueprintTestInterface`: a fixture module beside the blueprint
 * (`blueprint-fixture.ts` or `.js`) exports `setupBeforeTestedService`, optionally
 * `setupAfterTestedService`, and `verify` (which throws to fail). Each gets, last, a
 * `TestContext`: the SDK client and the helpers a check of a deployed service needs (retries
 * with a deadline, an HTTP request, where a published port is reached, the instances' console
 * output). The original handed its fixture class the client in its constructor; functions with
 * a context need no class. Helpers are plain functions too, for use without the tester.
 */
import { request } from 'node:http';
import type { Butter } from './connect.ts';
import type { Network } from './networks.ts';
import type { Service, ServiceRef, ServiceVars } from './services.ts';

/** What `setupBeforeTestedService` returns: kept in DIR/.butter/ (JSON) between `deploy` and `check`. */
export interface SetupInfo {
  /** Anything the later steps need (names of the services the fixture made, say). JSON only. */
  deploymentInfo: Record<string, unknown>;
  /** The variables the blueprint under test is created with. */
  blueprintVars: ServiceVars;
}

export interface TestContext {
  client: Butter;
  /** The blueprint's directory (DIR). */
  dir: string;
  /** `PREFIX-` and 6 random hex digits: a service name no other test run takes. */
  uniqueName(prefix: string): string;
  retry<T>(fn: () => T | Promise<T>, opts?: RetryOptions): Promise<T>;
  httpGet(url: string, opts?: HttpOptions): Promise<HttpAnswer>;
  /** `http://NODEADDR:HOSTPORT` where `service`'s `port` is published (see `endpoint` below). */
  endpoint(service: ServiceRef, port: number, opts?: { node?: string }): Promise<string>;
  /** Each instance's console output so far (instance name -> text). */
  consoleOutput(service: ServiceRef): Promise<Record<string, string>>;
  /** A progress line on the tester's stderr. */
  log(message: string): void;
}

/** The fixture module's exports; a default export with these members works too. */
export interface BlueprintFixture {
  /** Makes what the service under test needs (in `network`), and says with which variables to create it. */
  setupBeforeTestedService(network: Network, t: TestContext): SetupInfo | Promise<SetupInfo>;
  /** After the service under test runs: paths to it, say. */
  setupAfterTestedService?(network: Network, service: Service, setupInfo: SetupInfo, t: TestContext): unknown;
  /** Throws when the deployed service does not behave. */
  verify(network: Network, service: Service, setupInfo: SetupInfo, t: TestContext): unknown;
}

export interface RetryOptions {
  /** Give up (rethrowing the last failure) once this long has passed; default 2 min. */
  deadlineMs?: number;
  /** Pause between attempts; default 1 s. */
  intervalMs?: number;
}

/**
 * Calls `fn` until it returns without throwing, and returns what it returned. A guest takes
 * its time to boot and a path its second to reach the nodes, so checks are retried, but never
 * past the deadline: then the last failure is thrown, with how long it was tried.
 */
export async function retry<T>(fn: () => T | Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const deadlineMs = opts.deadlineMs ?? 120_000;
  const intervalMs = opts.intervalMs ?? 1_000;
  const end = Date.now() + deadlineMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() + intervalMs > end) {
        const last = e instanceof Error ? e.message : String(e);
        throw Object.assign(new Error(`gave up after ${attempt} attempt(s) in ${Math.round(deadlineMs / 1000)} s: ${last}`), { cause: e });
      }
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface HttpOptions {
  /** For the whole request, connecting included; default 10 s. */
  timeoutMs?: number;
}

export interface HttpAnswer {
  status: number;
  body: string;
}

/** A plain HTTP GET (what a published web service answers); any status is an answer, a refused or silent connection throws. */
export function httpGet(url: string, opts: HttpOptions = {}): Promise<HttpAnswer> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', timeout: timeoutMs, headers: { connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => reject(new Error(`GET ${url}: ${e.message}`)));
    req.end();
  });
}

const nameOf = (s: ServiceRef): string => (typeof s === 'string' ? s : s.name);

/**
 * `http://NODEADDR:HOSTPORT` where `service`'s TCP `port` is published (a path from a CIDR
 * beyond its network publishes it on every node's own addresses): the first node with an
 * address, or the one named by `node`. Throws, saying so, when the port is not published.
 */
export async function endpoint(client: Butter, service: ServiceRef, port: number, opts: { node?: string } = {}): Promise<string> {
  const name = nameOf(service);
  const s = await client.call('getService', { params: { name } });
  const published = s.published.find((p) => p.proto === 'tcp' && p.ports[0] <= port && port <= p.ports[1]);
  if (!published) throw new Error(`${name}:${port} is not published (no path from a CIDR beyond its network reaches it)`);
  const at = published.nodes.find((n) => n.address !== null && (opts.node === undefined || n.node === opts.node));
  if (!at) throw new Error(`${name}:${port} is published, but ${opts.node ? `node ${opts.node} has` : 'no node has'} reported an address yet`);
  const host = at.address!.includes(':') ? `[${at.address}]` : at.address;
  return `http://${host}:${published.hostPorts[0] + (port - published.ports[0])}`;
}

/** Each instance's console output from the start the control plane still keeps. */
export async function consoleOutput(client: Butter, service: ServiceRef): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const i of await client.service.getInstances(nameOf(service))) {
    out[i.name] = (await client.call('vmLogs', { params: { name: i.name }, query: { offset: 0 } })).data;
  }
  return out;
}
