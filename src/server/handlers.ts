/** One handler per route id; each is a thin call into a resource service. */
import type { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { ApiError } from '../api/errors.ts';
import { servedOpenApiDocument } from '../api/openapi.ts';
import { API_VERSION } from '../api/routes.ts';
import type { ImageCreate, ImageFromVm, ImageImport, ImageWarm } from '../api/schemas/image.ts';
import type { NetworkCreate } from '../api/schemas/network.ts';
import type { NodeReport, NodeUpdate } from '../api/schemas/node.ts';
import type { VmCreate } from '../api/schemas/vm.ts';
import type { Event } from '../api/schemas/event.ts';
import { actorOf, tokenPrincipal } from './auth.ts';
import type { BlobFiles } from './blobs.ts';
import { waitFor, type Consoles } from './consoles.ts';
import { attachConsole, type ConsoleSocket } from './console-ws.ts';
import type { EventStreams } from './event-stream.ts';
import type { Handlers } from './http.ts';
import type { IdempotencyKeys } from './idempotency.ts';
import type { Images } from './images.ts';
import type { ImageImports } from './image-import.ts';
import type { WarmImages } from './warm.ts';
import type { Networks } from './networks.ts';
import type { Nodes } from './nodes.ts';
import type { Readiness } from './readiness.ts';
import type { Store } from './store/store.ts';
import type { Tokens } from './tokens.ts';
import { COOKIE_OPTIONS, SESSION_COOKIE, type Sessions } from './sessions.ts';
import type { SignInLimiter } from './sign-in-limiter.ts';
import type { JoinTokens } from './join.ts';
import type { Vms } from './vms.ts';
import type { Snapshots } from './snapshots.ts';
import type { Exports } from './exports.ts';
import type { VmClone } from '../api/schemas/snapshot.ts';
import type { VpnPeers } from './vpn.ts';
import type { ServiceManager } from './services.ts';
import type { Graphs } from './graph.ts';
import type { GraphFormat } from '../api/schemas/graph.ts';
import type { Paths } from './paths.ts';
import type { PathVerifier } from './path-verify.ts';
import type { ProbeResults } from '../api/schemas/verify.ts';
import type { PathCreate, PathMatch } from '../api/schemas/path.ts';
import type { ServiceCreate, ServiceUpdate } from '../api/schemas/service.ts';
import type { VpnPeerCreate } from '../api/schemas/vpn.ts';
import type { IssuedRole } from '../api/schemas/token.ts';
import { PROMETHEUS_TEXT } from '../api/routes.ts';
import type { ControlPlaneMetrics } from './metrics.ts';

export interface Services {
  store: Store;
  blobs: BlobFiles;
  images: Images;
  /** Images imported by URL (image-import.ts). */
  imports: ImageImports;
  warm: WarmImages;
  nodes: Nodes;
  networks: Networks;
  vpn: VpnPeers;
  vms: Vms;
  snapshots: Snapshots;
  /** Snapshots flattened by their node for an image or a clone on another node (exports.ts). */
  exports: Exports;
  services: ServiceManager;
  paths: Paths;
  graphs: Graphs;
  /** `path verify`'s jobs and the probe batches waiting for their nodes. */
  verifier: PathVerifier;
  consoles: Consoles;
  /** The open `GET /v1/events/stream` answers. */
  events: EventStreams;
  tokens: Tokens;
  /** Panel sessions (cookie + CSRF) and the limit on failed sign-ins per address. */
  sessions: Sessions;
  signIns: SignInLimiter;
  joinTokens: JoinTokens;
  idempotency: IdempotencyKeys;
  readiness: Readiness;
  /** sha256 of the CA's public key when serving HTTPS; printed into join commands. */
  caHash: string | null;
  /** The certificates being served (they change when renewed), or null over plain HTTP. */
  tls: () => { caHash: string; caNotAfter: string; certNotAfter: string } | null;
  /** `GET /metrics` (metrics.ts). */
  metrics: ControlPlaneMetrics;
}

/**
 * Aborts when the caller's response closes (the client cancelled or went away, or the server
 * cut its session on close), so a long-poll lets go at once instead of when its wait runs out.
 */
function hungUp(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.once('close', () => ac.abort());
  return ac.signal;
}

export function makeHandlers(s: Services): Handlers {
  const vmOfNode = (node: string, id: string) => {
    const vm = s.store.db.prepare(`SELECT id FROM vms WHERE id = ? AND node = ?`).get(id, node);
    if (!vm) throw new ApiError('not_found', `vm ${id} is not on node ${node}`, 'id');
  };
  /** Keystrokes into a VM's console, for its agent to fetch: the one path of `vm console` and the WebSocket. */
  const typeInto = (vm: { id: string; name: string; node: string | null; power: string }, bytes: Buffer) => {
    if (!vm.node || vm.power !== 'running') throw new ApiError('conflict', `vm ${vm.name} is not running`, 'name');
    s.consoles.type(vm.node, vm.id, bytes);
  };
  return {
    health: () => ({ ok: true, version: API_VERSION, revision: s.store.revision() }),
    ready: ({ reply }) => {
      const r = s.readiness.check();
      if (!r.ready) reply.code(503);
      return r;
    },
    openapi: () => servedOpenApiDocument(),
    metrics: async ({ reply }) => {
      const text = await s.metrics.scrape();
      reply.type(PROMETHEUS_TEXT);
      return text;
    },
    whoami: ({ who }) => ({ role: who.role, node: who.node, tls: s.tls() }),

    listNodes: () => ({ items: s.nodes.list(), revision: s.store.revision() }),
    getNode: ({ params }) => s.nodes.get(params.name!),
    createNode: ({ who, body }) => s.nodes.create(actorOf(who), (body as { name: string }).name),
    createJoinToken: ({ who, body }) => ({ ...s.joinTokens.create(actorOf(who), body as { ttl: string; group?: string; zone?: string }), caHash: s.caHash }),
    listJoinTokens: () => ({ items: s.joinTokens.list(), revision: s.store.revision() }),
    join: ({ req, body }) => {
      const b = body as { name: string; labels?: Record<string, string> };
      return s.joinTokens.join(req.headers.authorization, b.name, b.labels);
    },
    updateNode: ({ who, params, body }) => s.nodes.update(actorOf(who), params.name!, body as NodeUpdate),
    deleteNode: ({ who, params, query }) => {
      for (const id of s.nodes.remove(actorOf(who), params.name!, query.force === true)) s.consoles.remove(id);
      return {};
    },
    cordonNode: ({ who, params }) => s.nodes.setCordon(actorOf(who), params.name!, true),
    uncordonNode: ({ who, params }) => s.nodes.setCordon(actorOf(who), params.name!, false),
    drainNode: ({ who, params }) => {
      s.nodes.setCordon(actorOf(who), params.name!, true);
      return s.vms.relocate(actorOf(who), params.name!, 'drain');
    },
    evacuateNode: ({ who, params }) => s.vms.relocate(actorOf(who), params.name!, 'evacuate'),
    listGroups: () => ({ items: s.nodes.groups(), revision: s.store.revision() }),
    setGroup: ({ who, params, body }) => s.nodes.setGroup(actorOf(who), params.name!, body as { cpuRatio?: number }),
    nodeDesired: async ({ params, query, req, reply }) => {
      const name = params.name!;
      const since = (query.since as number | undefined) ?? -1;
      const wait = (query.wait as number | undefined) ?? 0;
      if (s.nodes.desiredRevision(name) <= since && wait > 0 && !s.consoles.hasInput(name) && !s.verifier.hasBatches(name)) {
        await waitFor(s.store.changes, `node:${name}`, wait * 1000, hungUp(reply));
      }
      // A watch its agent gave up on (a restarted agent's old one, still waiting here) must
      // not take what its answer would carry: nobody would read it.
      const gone = requestGone(req.raw);
      const input = gone ? [] : s.consoles.takeInput(name);
      const batches = gone ? [] : s.verifier.takeBatches(name);
      const extra = { ...(input.length ? { consoleInput: input } : {}), ...(batches.length ? { probes: batches } : {}) };
      const revision = s.nodes.desiredRevision(name);
      // Nothing new: a few bytes instead of the whole state (1,000 agents re-watch every 10 s).
      if (revision <= since) return { revision, unchanged: true as const, ...extra };
      return { ...s.nodes.desired(name), ...extra };
    },
    nodeReport: ({ params, body, req }) => {
      for (const id of s.nodes.report(params.name!, body as NodeReport, req.ip)) s.consoles.remove(id);
      return {};
    },
    nodeProbeResults: ({ params, body }) => {
      s.verifier.result(params.name!, body as ProbeResults);
      return {};
    },
    nodeConsole: ({ params, body }) => {
      vmOfNode(params.name!, params.id!);
      const chunk = body as { offset: number; base64: string; stream?: string };
      // A stream is one log file on one node: a node's chunks arrive only while the VM is placed there.
      s.consoles.append(params.id!, chunk.stream ? `${params.name!}/${chunk.stream}` : params.name!, chunk.offset, Buffer.from(chunk.base64, 'base64'));
      return {};
    },

    uploadBlob: async ({ who, query, body }) => {
      const blob = await s.blobs.put(body as Readable, query.sha256 as string | undefined);
      s.images.recordBlob(actorOf(who), blob.sha256, blob.sizeBytes);
      return blob;
    },
    getBlob: ({ params, reply }) => {
      const sha = params.sha256!;
      if (!s.store.db.prepare(`SELECT 1 FROM blobs WHERE sha256 = ?`).get(sha) || !s.blobs.has(sha)) throw new ApiError('not_found', `blob ${sha} not found`, 'sha256');
      reply.header('content-type', 'application/octet-stream').header('content-length', s.blobs.size(sha));
      return s.blobs.read(sha);
    },

    createImageFromVm: ({ who, body }) => s.exports.startImage(actorOf(who), body as ImageFromVm),
    nodeExportUpload: async ({ params, query, body }) => {
      await s.exports.receive(params.name!, (params as { id: string }).id, query.sha256 as string, body as Readable);
      return {};
    },
    nodeExportFailed: ({ params, body }) => {
      s.exports.fail(params.name!, (params as { id: string }).id, (body as { reason: string }).reason);
      return {};
    },
    listImages: () => ({ items: s.images.list(), revision: s.store.revision() }),
    createImage: ({ who, body, once }) => s.images.create(actorOf(who), body as ImageCreate, once),
    importImage: ({ who, body, once }) => s.imports.start(actorOf(who), body as ImageImport, once),
    warmImage: ({ who, params, body }) => s.warm.warm(actorOf(who), params.name!, body as ImageWarm),
    unwarmImage: ({ who, params }) => s.warm.unwarm(actorOf(who), params.name!, params.node!),
    getImage: ({ params }) => s.images.get(params.name!),
    deleteImage: ({ who, params }) => {
      s.images.remove(actorOf(who), params.name!);
      return {};
    },

    listNetworks: () => ({ items: s.networks.list(), revision: s.store.revision() }),
    createNetwork: ({ who, body, once }) => s.networks.create(actorOf(who), body as NetworkCreate, once),
    getNetwork: ({ params }) => s.networks.get(params.name!),
    verifyNetwork: ({ params, query }) => s.verifier.verify(params.name!, query.timeout as number | undefined),
    deleteNetwork: ({ who, params }) => {
      s.networks.remove(actorOf(who), params.name!);
      return {};
    },
    listNetworkPeers: ({ params }) => ({ items: s.vpn.list(params.name!), revision: s.store.revision() }),
    joinNetwork: ({ who, params, body, once }) => s.vpn.join(actorOf(who), params.name!, body as VpnPeerCreate, once),
    revokeNetworkPeer: ({ who, params }) => {
      s.vpn.revoke(actorOf(who), params.name!, params.peer!);
      return {};
    },
    listVms: () => ({ items: s.vms.list(), revision: s.store.revision() }),
    createVm: ({ who, body, once }) => s.vms.createQueued(actorOf(who), body as VmCreate, once),
    getVm: ({ params }) => s.vms.get(params.name!),
    deleteVm: ({ who, params, query }) => {
      const force = query.force === true;
      const vm = s.vms.remove(actorOf(who), params.name!, force);
      if (force) s.consoles.remove(vm.id); // no report will say it is gone
      return vm;
    },
    startVm: ({ who, params }) => s.vms.setPower(actorOf(who), params.name!, 'start'),
    stopVm: ({ who, params }) => s.vms.setPower(actorOf(who), params.name!, 'stop'),
    restartVm: ({ who, params }) => s.vms.setPower(actorOf(who), params.name!, 'restart'),
    suspendVm: ({ who, params, body }) => s.vms.suspend(actorOf(who), params.name!, (body as { release?: boolean } | undefined)?.release ?? false),
    resumeVm: ({ who, params }) => s.vms.resume(actorOf(who), params.name!),
    createSnapshot: ({ who, params, body }) => s.snapshots.take(actorOf(who), params.name!, (body as { name?: string } | undefined)?.name, (body as { memory?: boolean } | undefined)?.memory === true),
    listSnapshots: ({ params }) => ({ items: s.snapshots.list(params.name!), revision: s.store.revision() }),
    restoreSnapshot: ({ who, params }) => s.snapshots.restore(actorOf(who), params.name!, (params as { snap: string }).snap),
    deleteSnapshot: ({ who, params }) => {
      s.snapshots.remove(actorOf(who), params.name!, (params as { snap: string }).snap);
      return {};
    },
    reinitVm: ({ who, params }) => s.snapshots.reinit(actorOf(who), params.name!),
    cloneVm: ({ who, params, body }) => s.snapshots.clone(actorOf(who), params.name!, body as VmClone),
    resizeVm: ({ who, params, body }) => s.vms.resize(actorOf(who), params.name!, body as { cpus?: number; memory?: string }),
    getUserData: ({ params }) => ({ userData: s.vms.row(params.name!).user_data }),
    setUserData: ({ who, params, body }) => ({ userData: s.vms.setUserData(actorOf(who), params.name!, (body as { userData: string }).userData) }),
    vmConsoleInput: ({ params, body }) => {
      typeInto(s.vms.row(params.name!), Buffer.from((body as { base64: string }).base64, 'base64'));
      return {};
    },
    // Checked before the upgrade (the VM exists); the socket is then the console's (console-ws.ts).
    vmConsoleSocket: ({ who, params, query }) => {
      const { id, name } = s.vms.row(params.name!);
      const from = (query.offset as number | undefined) ?? s.consoles.size(id);
      const byId = () => s.store.db.prepare(`SELECT * FROM vms WHERE id = ?`).get(id) as { id: string; name: string; node: string | null; power: string } | undefined;
      return (socket: ConsoleSocket) =>
        attachConsole(socket, {
          changes: s.store.changes,
          consoles: s.consoles,
          vmId: id,
          from,
          ...(who.session ? { endsAt: Date.parse(who.session.expiresAt) } : {}),
          ended: () => {
            const vm = byId();
            if (!vm || vm.power === 'deleted') return { code: 1000, reason: `vm ${name} was deleted` };
            if (!s.sessions.stillValid(who)) return { code: 1008, reason: who.session ? 'the session ended: sign in again' : 'the token was revoked' };
            return undefined;
          },
          type: (bytes) => {
            const vm = byId();
            if (!vm) throw new ApiError('not_found', `vm ${name} not found`, 'name');
            typeInto(vm, bytes);
          },
        });
    },
    vmLogs: ({ params, query, reply }) => s.consoles.wait(s.vms.row(params.name!).id, (query.offset as number | undefined) ?? 0, (query.wait as number | undefined) ?? 0, hungUp(reply)),

    listServices: ({ query }) => ({ items: s.services.list(query.network as string | undefined), revision: s.store.revision() }),
    createService: ({ who, body, once }) => s.services.create(actorOf(who), body as ServiceCreate, once),
    getService: ({ params }) => s.services.get(params.name!),
    deleteService: ({ who, params }) => s.services.remove(actorOf(who), params.name!),
    scaleService: ({ who, params, body }) => s.services.scale(actorOf(who), params.name!, (body as { count: number }).count),
    updateService: ({ who, params, body }) => s.services.update(actorOf(who), params.name!, body as ServiceUpdate),
    rollbackService: ({ who, params, body }) => s.services.rollback(actorOf(who), params.name!, (body as { to?: number }).to),
    listServiceRevisions: ({ params }) => ({ items: s.services.revisions(params.name!), revision: s.store.revision() }),

    listPaths: ({ query }) => ({ items: s.paths.list(query as { network?: string; service?: string }), revision: s.store.revision() }),
    createPath: ({ who, body, once }) => s.paths.add(actorOf(who), body as PathCreate, once),
    removePathMatching: ({ who, query }) => s.paths.removeMatching(actorOf(who), query as PathMatch),
    checkPath: ({ query }) => s.paths.check(query as Parameters<Paths['check']>[0]),
    deletePath: ({ who, params }) => s.paths.remove(actorOf(who), params.id!),
    getGraph: async ({ query, reply }) => {
      const a = await s.graphs.answer(query.format as GraphFormat, query.network as string | undefined);
      if (a.format === 'json') return a.graph;
      // DOT and SVG go out as text of their own media type, not as a JSON string.
      reply.type(`${a.mediaType}; charset=utf-8`);
      return a.text;
    },

    listTokens: () => ({ items: s.tokens.list(), revision: s.store.revision() }),
    createToken: ({ who, body }) => {
      const b = body as { role: IssuedRole; description?: string };
      return s.tokens.create(actorOf(who), b.role, b.description);
    },
    deleteToken: ({ who, params }) => {
      s.tokens.remove(actorOf(who), params.id!);
      return {};
    },

    createSession: ({ req, reply, body }) => {
      const address = req.ip;
      const wait = s.signIns.retryAfter(address);
      if (wait > 0) {
        reply.header('retry-after', String(wait));
        throw new ApiError('too_many_requests', `too many failed sign-ins from ${address}: try again in ${wait} s`, 'token');
      }
      let who;
      try {
        who = tokenPrincipal(s.store.db, (body as { token: string }).token);
      } catch (e) {
        if (e instanceof ApiError) s.signIns.fail(address);
        throw e instanceof ApiError ? new ApiError(e.code, e.message, 'token') : e;
      }
      const { cookie, session } = s.sessions.open(who);
      reply.setCookie(SESSION_COOKIE, cookie, COOKIE_OPTIONS);
      return session;
    },
    getSession: ({ req }) => ({ session: s.sessions.current(req.cookies?.[SESSION_COOKIE]) }),
    deleteSession: ({ who, reply }) => {
      s.sessions.end(who);
      reply.clearCookie(SESSION_COOKIE, COOKIE_OPTIONS);
      return {};
    },

    listEvents: ({ query }) => {
      const q = query as { since?: number; limit?: number; resource?: string; name?: string; sinceRevision?: number; last?: number };
      const where = ['id > ?', 'revision > ?'];
      const args: unknown[] = [q.since ?? 0, q.sinceRevision ?? -1];
      for (const [col, v] of [['resource', q.resource], ['name', q.name]] as const) {
        if (v === undefined) continue;
        where.push(`${col} = ?`);
        args.push(v);
      }
      const sql = `SELECT * FROM events WHERE ${where.join(' AND ')}`;
      // `last`: the newest of them, still answered oldest first.
      const rows = (q.last !== undefined
        ? (s.store.db.prepare(`${sql} ORDER BY id DESC LIMIT ?`).all(...args, q.last) as Event[]).reverse()
        : s.store.db.prepare(`${sql} ORDER BY id LIMIT ?`).all(...args, q.limit ?? 200)) as Event[];
      return { items: rows, revision: s.store.revision() };
    },
    streamEvents: ({ who, query, headers, req, reply }) => {
      const q = query as { since?: number; resource?: string; name?: string };
      const from = (headers['Last-Event-ID'] as number | undefined) ?? q.since;
      // no-transform, X-Accel-Buffering: a proxy in front must pass each message on as it comes.
      reply.header('content-type', 'text/event-stream; charset=utf-8').header('cache-control', 'no-cache, no-transform').header('x-accel-buffering', 'no');
      // A HEAD gets the headers only: a subscription nobody reads would never be let go.
      if (req.method === 'HEAD') return '';
      return s.events.open(from, { resource: q.resource, name: q.name }, actorOf(who), () => s.sessions.stillValid(who));
    },
  };
}

/** Whether the client of a request went away (its HTTP/2 stream, or its HTTP/1.1 socket, is closed). */
function requestGone(raw: unknown): boolean {
  const r = raw as { stream?: { destroyed?: boolean }; socket?: { destroyed?: boolean } | null };
  return r.stream?.destroyed ?? r.socket?.destroyed ?? false;
}
