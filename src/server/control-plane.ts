/**
 * The control plane: store, services and HTTP server for `butter server` (and `butter up`).
 * On first start it writes an admin token to `DIR/admin.token` (mode 0600).
 */
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { gatewayOf, parseCidr } from '../core/ipv4.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { issueToken } from './auth.ts';
import { SystemExec, type Exec } from '../agent/host/exec.ts';
import { BlobFiles } from './blobs.ts';
import { ImageInspector } from './image-inspector.ts';
import { Consoles } from './consoles.ts';
import { startEventPruner, stderrPrunerLog, type PrunerLog } from './event-pruner.ts';
import { EventStreams, type EventStreamOptions } from './event-stream.ts';
import { DEFAULT_RETENTION, type EventRetention } from '../core/event-retention.ts';
import { makeHandlers, type Services } from './handlers.ts';
import { TlsRenewal, type SecureServer, type TlsRenewalOptions } from './tls-renewal.ts';
import type { ServerTls } from './tls.ts';
import { buildHttp, type ServerErrorLog } from './http.ts';
import { IdempotencyKeys } from './idempotency.ts';
import { Images } from './images.ts';
import { WarmImages } from './warm.ts';
import { ImageImports, type ImageImportOptions } from './image-import.ts';
import { Networks } from './networks.ts';
import { Readiness } from './readiness.ts';
import { VpnPeers } from './vpn.ts';
import { Nodes } from './nodes.ts';
import { Store } from './store/store.ts';
import { Tokens } from './tokens.ts';
import { Sessions } from './sessions.ts';
import { SignInLimiter } from './sign-in-limiter.ts';
import { JoinTokens } from './join.ts';
import { DEFAULT_NETWORK, Vms } from './vms.ts';
import { Snapshots } from './snapshots.ts';
import { Exports } from './exports.ts';
import { ServiceManager } from './services.ts';
import { Graphs } from './graph.ts';
import { SvgRenderer, type SvgRendererOptions } from './graph-renderer.ts';
import { Paths } from './paths.ts';
import { PathVerifier } from './path-verify.ts';
import { RolloutController } from './rollout.ts';
import { ControlPlaneMetrics } from './metrics.ts';

export interface ControlPlaneOptions {
  dataDir: string;
  /** CIDR of the `default` network, made on first start. */
  defaultCidr?: string;
  logger?: boolean | object;
  /** Serve HTTPS with this key and certificate chain (see `tls.ts`). */
  https?: ServerTls;
  /** With `https`: renew the server certificate while running (see `tls-renewal.ts`). */
  tlsRenewal?: TlsRenewalOptions;
  /** Runs `qemu-img info` on uploaded images (image-inspector.ts) and Graphviz for SVG graphs (graph-renderer.ts); the real one by default. */
  exec?: Exec;
  /** How SVG graphs are drawn (graph-renderer.ts): the Graphviz program, its deadline, drawings at once. */
  graphviz?: SvgRendererOptions;
  /** Where 5xx errors are logged with their request id (http.ts); stderr by default. */
  onServerError?: ServerErrorLog;
  /** Console output kept per VM (consoles.ts); 1 MiB by default. */
  consoleMaxBytes?: number;
  /** How long a network stays built on a node after its last VM there went (network-linger.ts); 0 (not at all) by default, 60 s in the daemons. */
  networkLingerMs?: number;
  /** How long audit events are kept (core/event-retention.ts); 90 days and 100,000 by default. */
  eventRetention?: EventRetention;
  /** How long a service's replacement instance may take to run before its rollout stops (rollout.ts; 5 min by default). */
  rolloutTimeoutMs?: number;
  /** Where the built web panel is (server/panel.ts); `dist/panel/` of this package by default. */
  panelDir?: string;
  /** The daemon's logger (pino) for the control plane's housekeeping; JSON lines on stderr by default. */
  log?: PrunerLog & { warn?(obj: object, msg: string): void };
  /** Imports by URL (image-import.ts): deadline, size cap, and (tests only) local hosts allowed. */
  imageImports?: ImageImportOptions;
  /** `GET /v1/events/stream`'s keepalive period and the bytes a stalled client may hold (event-stream.ts). */
  eventStream?: Omit<EventStreamOptions, 'log'>;
}

export interface ControlPlane {
  services: Services;
  http: FastifyInstance;
  /** Set only on the first start, when the admin token was just made. */
  adminToken: string | undefined;
  adminTokenPath: string;
  /** Set when serving HTTPS with renewal. */
  tlsRenewal: TlsRenewal | undefined;
  listen(host: string, port: number): Promise<string>;
  close(): Promise<void>;
}

export const DEFAULT_PORT = 7700;
export const DEFAULT_CIDR = '10.200.0.0/16';
/** How often heartbeat times held in memory are written to the database (see liveness.ts). */
const LIVENESS_FLUSH_MS = 5_000;
/** How often expired Idempotency-Keys and sessions are deleted (lookups ignore them from the moment they expire). */
const KEY_PRUNE_MS = 10 * 60_000;
/** How often the audit log is pruned by age and count (core/event-retention.ts). */
const EVENT_PRUNE_MS = 3_600_000;

export function createControlPlane(opts: ControlPlaneOptions): ControlPlane {
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  chmodSync(opts.dataDir, 0o700);
  const store = new Store(join(opts.dataDir, 'butter.db'));
  // The database holds user-data and token hashes: readable by root only.
  for (const f of ['butter.db', 'butter.db-wal', 'butter.db-shm']) if (existsSync(join(opts.dataDir, f))) chmodSync(join(opts.dataDir, f), 0o600);
  const exec = opts.exec ?? new SystemExec();
  const blobs = new BlobFiles(opts.dataDir, new ImageInspector(exec));
  const images = new Images(store, blobs);
  const nodes = new Nodes(store, opts.networkLingerMs !== undefined ? { networkLingerMs: opts.networkLingerMs } : {});
  // Read from the store only when scraped (metrics.ts); counters are counted where things happen.
  const metrics = new ControlPlaneMetrics({
    nodes: () => nodes.list(),
    vmStates: () => Object.fromEntries((store.db.prepare(`SELECT state, COUNT(*) AS n FROM vms GROUP BY state`).all() as { state: string; n: number }[]).map((r) => [r.state, r.n])),
    revision: () => store.revision(),
  });
  const vms = new Vms(store, nodes, images, metrics);
  const consoles = new Consoles(opts.dataDir, store.changes, opts.consoleMaxBytes !== undefined ? { maxBytes: opts.consoleMaxBytes } : {});
  const serviceManager = new ServiceManager(store, vms, images);
  /** The ports this control plane listens on: never a published host port (a node beside it serves them too). */
  const apiPorts: number[] = [];
  const paths = new Paths(store, () => apiPorts);
  const snapshots = new Snapshots(store, vms);
  const services: Services = { store, blobs, images, imports: new ImageImports(store, images, blobs, opts.imageImports), warm: new WarmImages(store, nodes, images), nodes, networks: new Networks(store), vpn: new VpnPeers(store), vms, snapshots, exports: new Exports(store, images, blobs, snapshots), services: serviceManager, paths, graphs: new Graphs(store, () => paths.list(), new SvgRenderer(exec, opts.graphviz)), verifier: new PathVerifier(store, store.changes), consoles, tokens: new Tokens(store), sessions: new Sessions(store), signIns: new SignInLimiter(), joinTokens: new JoinTokens(store, nodes), idempotency: new IdempotencyKeys(store), readiness: new Readiness(store, nodes, images), caHash: opts.https?.caHash ?? null, tls: () => null, metrics, events: new EventStreams(store, { ...opts.eventStream, ...(opts.log?.warn ? { log: opts.log as { warn(obj: object, msg: string): void } } : {}) }) };

  const adminTokenPath = join(opts.dataDir, 'admin.token');
  let adminToken: string | undefined;
  if (!existsSync(adminTokenPath)) {
    adminToken = store.write('server', (tx) => {
      const t = issueToken(tx.db, 'admin', null, tx.now);
      tx.event('create', 'token', 'admin', 'first admin token written to admin.token');
      return t;
    });
    writeFileAtomic(adminTokenPath, adminToken + '\n', 0o600);
  }
  if (!store.db.prepare(`SELECT 1 FROM networks WHERE name = ?`).get(DEFAULT_NETWORK)) {
    const cidr = opts.defaultCidr ?? DEFAULT_CIDR;
    store.write('server', (tx) => {
      tx.db.prepare(`INSERT INTO networks (name, cidr, gateway, nat, vni, created_at) VALUES (?, ?, ?, 1, 100, ?)`).run(DEFAULT_NETWORK, cidr, gatewayOf(parseCidr(cidr)), tx.now);
      tx.event('create', 'network', DEFAULT_NETWORK, `network ${DEFAULT_NETWORK} ${cidr}`);
    });
  }

  const http = buildHttp(store, makeHandlers(services), opts.logger ?? false, opts.https, opts.onServerError, { requests: metrics, ...(opts.panelDir !== undefined ? { panelDir: opts.panelDir } : {}) });
  // Fastify's HTTPS server (HTTP/2 with HTTP/1.1) is a tls.Server underneath.
  const tlsRenewal = opts.https && opts.tlsRenewal ? new TlsRenewal(opts.https, http.server as unknown as SecureServer, opts.tlsRenewal) : undefined;
  if (opts.https) {
    const served = () => tlsRenewal?.tls ?? opts.https!;
    services.tls = () => ({ caHash: served().caHash, caNotAfter: served().caNotAfter, certNotAfter: served().certNotAfter });
  }
  const sweeper = setInterval(() => {
    nodes.sweep(new Date());
    services.exports.collect();
  }, 1_000);
  sweeper.unref();
  const flusher = setInterval(() => nodes.flushLiveness(), LIVENESS_FLUSH_MS);
  flusher.unref();
  // Expired Idempotency-Keys and panel sessions (lookups ignore both from the moment they expire).
  const keyPruner = setInterval(() => {
    const now = new Date();
    services.idempotency.prune(now);
    services.sessions.prune(now);
  }, KEY_PRUNE_MS);
  keyPruner.unref();
  // The audit log is pruned at start and hourly; a failure is only a delay, retried the next hour (logged).
  const stopPruner = startEventPruner(store, opts.eventRetention ?? DEFAULT_RETENTION, opts.log ?? stderrPrunerLog, EVENT_PRUNE_MS);
  // Rollouts carry on from the store: one interrupted by a restart resumes here.
  const rolloutLog = opts.log ?? stderrPrunerLog;
  const rollouts = new RolloutController(store, serviceManager, { ...(opts.rolloutTimeoutMs !== undefined ? { timeoutMs: opts.rolloutTimeoutMs } : {}), log: (msg) => rolloutLog.error({}, msg) });
  rollouts.start();

  return {
    services,
    http,
    adminToken,
    adminTokenPath,
    tlsRenewal,
    listen: async (host, port) => {
      const address = await http.listen({ host, port });
      const bound = http.server.address();
      if (bound && typeof bound === 'object') apiPorts.push(bound.port);
      tlsRenewal?.start();
      return address;
    },
    close: async () => {
      tlsRenewal?.stop();
      rollouts.stop();
      clearInterval(sweeper);
      clearInterval(flusher);
      stopPruner();
      clearInterval(keyPruner);
      // Event streams end cleanly first (their clients reconnect to the next process); the
      // connections themselves are then cut by forceCloseConnections, so none holds close() up.
      services.events.closeAll();
      services.imports.close();
      await http.close();
      nodes.flushLiveness();
      store.close();
    },
  };
}
