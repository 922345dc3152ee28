/**
 * The agent's `/metrics` listener (plain HTTP: `--metrics-listen`, by default loopback and the
 * node's mesh address, which WireGuard encrypts; never the LAN in clear). A scrape carries
 * `Authorization: Bearer <metrics or admin token>`, which the agent cannot check itself (it
 * holds no token table): it asks its control plane (`GET /v1/whoami` as that token) and
 * keeps the answer a minute, keyed by the token's sha256 (the token itself is never kept).
 * No token or one the control plane refuses: 401; another role: 403; the control plane
 * unreachable: 503 (not kept, the next scrape asks again).
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PROMETHEUS_TEXT } from '../api/routes.ts';
import type { Role } from '../api/schemas/token.ts';
import { ButterError } from '../sdk/client.ts';

export const DEFAULT_METRICS_PORT = 7702;

/** The role of a token, or 'refused' when the control plane does not know it; throws when it cannot be asked. */
export type WhoIs = (token: string) => Promise<Role | 'refused'>;

export interface MetricsServerOptions {
  scrape: () => Promise<string>;
  whois: WhoIs;
  /** How long an answer about a token is kept (60 s). */
  cacheMs?: number;
  now?: () => number;
  log?: (msg: string) => void;
}

/** The roles that may scrape (as `/metrics` on the control plane: `metrics` access). */
const SCRAPERS: ReadonlySet<string> = new Set(['metrics', 'admin']);
const TOKEN = /^Bearer (bt_[0-9a-f]{12}_[A-Za-z0-9_-]{32})$/;
/** A bound on the cache: entries per distinct token seen in a minute (each cost the scraper a call). */
const MAX_CACHED = 1000;

export class MetricsServer {
  private readonly servers = new Map<string, Server>();
  private readonly known = new Map<string, { role: Role | 'refused'; until: number }>();

  constructor(private readonly opts: MetricsServerOptions) {}

  /** Listens on `host:port` (port 0: any); resolves with the URL. Listening twice on one address is a no-op. */
  async listen(host: string, port: number): Promise<string> {
    const key = `${host}:${port}`;
    const had = this.servers.get(key);
    if (had) return urlOf(had);
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.servers.set(key, server);
    return urlOf(server);
  }

  /** Stops listening on `host:port` (a mesh address that changed). */
  async unlisten(host: string, port: number): Promise<void> {
    const s = this.servers.get(`${host}:${port}`);
    if (!s) return;
    this.servers.delete(`${host}:${port}`);
    await close(s);
  }

  async close(): Promise<void> {
    const all = [...this.servers.values()];
    this.servers.clear();
    await Promise.all(all.map(close));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = (status: number, body: string, type = 'application/json; charset=utf-8', extra: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': type, ...extra });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const refuse = (status: number, code: string, message: string) => send(status, JSON.stringify({ error: { code, message } }), undefined, status === 401 ? { 'www-authenticate': 'Bearer' } : {});
    try {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== '/metrics') return refuse(404, 'not_found', `no route ${req.method} ${path}: this is a node agent's metrics listener, it serves GET /metrics only`);
      if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(405, 'invalid', 'only GET /metrics');
      const m = TOKEN.exec(req.headers.authorization ?? '');
      if (!m) return refuse(401, 'unauthenticated', 'missing or malformed bearer token (a metrics or admin token)');
      let role: Role | 'refused';
      try {
        role = await this.roleOf(m[1]!);
      } catch (e) {
        this.opts.log?.(`metrics: cannot check a scraper's token with the control plane: ${(e as Error).message}`);
        return refuse(503, 'unavailable', 'the control plane, which checks tokens, cannot be reached; try again');
      }
      if (role === 'refused') return refuse(401, 'unauthenticated', 'unknown token');
      if (!SCRAPERS.has(role)) return refuse(403, 'forbidden', `${/^[aeiou]/.test(role) ? 'an' : 'a'} ${role} token may not scrape metrics: it needs a metrics or admin token`);
      send(200, await this.opts.scrape(), PROMETHEUS_TEXT);
    } catch (e) {
      this.opts.log?.(`metrics: ${(e as Error).stack ?? String(e)}`);
      if (!res.headersSent) refuse(500, 'internal', 'could not collect the metrics (the agent\'s log says why)');
      else res.destroy();
    }
  }

  private async roleOf(token: string): Promise<Role | 'refused'> {
    const now = (this.opts.now ?? Date.now)();
    const key = createHash('sha256').update(token).digest('hex');
    const hit = this.known.get(key);
    if (hit && hit.until > now) return hit.role;
    const role = await this.opts.whois(token);
    if (this.known.size >= MAX_CACHED) for (const [k, v] of this.known) if (v.until <= now || this.known.size >= MAX_CACHED) this.known.delete(k);
    this.known.set(key, { role, until: now + (this.opts.cacheMs ?? 60_000) });
    return role;
  }
}

/** Asks the control plane (through `client`'s connection) who a token is. */
export function whoisWith(client: { withToken(token: string): { call(id: 'whoami', args: object): Promise<{ role: Role }> } }): WhoIs {
  return async (token) => {
    try {
      return (await client.withToken(token).call('whoami', {})).role;
    } catch (e) {
      // Refused (401) is an answer about the token; anything else (no answer, 5xx) is not.
      if (e instanceof ButterError && e.status === 401) return 'refused';
      throw e;
    }
  };
}

function urlOf(s: Server): string {
  const a = s.address() as AddressInfo;
  return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
}

function close(s: Server): Promise<void> {
  return new Promise((resolve) => {
    s.close(() => resolve());
    s.closeAllConnections();
  });
}
