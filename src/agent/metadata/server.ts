/**
 * The HTTP server each host agent runs at http://169.254.169.254/ for its VMs.
 *
 * Built on node:http rather than fastify: the route table is a dozen fixed strings, nothing
 * has a body to parse or validate, and every request must first be resolved to a VM by its
 * source address (403 before any 404). A framework would add routing, hooks and per-request
 * logging for no gain and we would override its 404/error handling anyway; plain node:http
 * keeps the hot path a map lookup and a string write, well inside the p99 <= 5 ms budget.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Ec2TokenStore, handleEc2 } from './ec2.ts';
import { renderMetaData, renderNetworkConfig } from './nocloud.ts';
import type { MetadataReply, MetadataSource, VmMetadata } from './types.ts';

export interface MetadataServerOptions {
  /** Clock for token expiry (ms since the epoch). */
  now?: () => number;
  /** Source of EC2 tokens; the default is 32 random bytes, base64url. */
  randomToken?: () => string;
  /** Where errors thrown by `source` go; the default emits a process warning. */
  onError?: (err: unknown) => void;
}

export interface MetadataServer {
  listen(host: string, port: number): Promise<{ port: number }>;
  close(): Promise<void>;
}

/**
 * The VM's address as `lookup` expects it. A dual-stack socket reports an IPv4 peer as
 * `::ffff:10.0.0.5`; only that exact shape is unwrapped.
 */
export function sourceIpOf(remoteAddress: string | undefined): string | undefined {
  if (!remoteAddress) return undefined;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(remoteAddress);
  return mapped ? mapped[1] : remoteAddress;
}

/**
 * The request path without query or fragment, runs of '/' collapsed: cloud-init joins the
 * seed `s=http://169.254.169.254/` with `/meta-data` on some versions, giving `//meta-data`.
 * Undefined for a request target that is not a path (e.g. `OPTIONS *`).
 */
export function normalisePath(target: string): string | undefined {
  let path = target;
  if (!path.startsWith('/')) {
    // Absolute form (`GET http://169.254.169.254/meta-data`), as sent to a proxy.
    try {
      path = new URL(path).pathname;
    } catch {
      return undefined;
    }
  }
  const end = path.search(/[?#]/);
  if (end >= 0) path = path.slice(0, end);
  return path.replace(/\/{2,}/g, '/');
}

/** The NoCloud files; undefined when `path` is not one of them. */
function handleNoCloud(method: string, path: string, md: VmMetadata): MetadataReply | undefined {
  let body: string;
  let countsAsFetch = false;
  switch (path) {
    case '/meta-data':
      body = renderMetaData(md);
      countsAsFetch = true;
      break;
    case '/user-data':
      body = md.userData;
      countsAsFetch = true;
      break;
    case '/vendor-data':
      body = md.vendorData;
      break;
    case '/network-config':
      body = renderNetworkConfig(md);
      break;
    default:
      return undefined;
  }
  if (method !== 'GET' && method !== 'HEAD') {
    return { status: 405, body: 'method not allowed\n', headers: { allow: 'GET, HEAD' } };
  }
  return { status: 200, body, countsAsFetch };
}

function send(res: http.ServerResponse, reply: MetadataReply): void {
  res.writeHead(reply.status, {
    // The route's headers first (node:http writes them in this order, its own after them):
    // a token reply must begin with TOKEN_REPLY_PREFIX (core/gateway-ns.ts).
    ...reply.headers,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(reply.body),
    // Per-VM answers that change with the VM; nothing between guest and host should keep them.
    'cache-control': 'no-store',
  });
  res.end(reply.body); // node:http leaves the body out for HEAD
}

function defaultOnError(err: unknown): void {
  process.emitWarning(err instanceof Error ? err : String(err), { code: 'BUTTER_METADATA' });
}

export function createMetadataServer(source: MetadataSource, opts: MetadataServerOptions = {}): MetadataServer {
  const tokens = new Ec2TokenStore({ now: opts.now, randomToken: opts.randomToken });
  const onError = opts.onError ?? defaultOnError;

  // Requests seen per connection: a token PUT is answered only as the first (ec2.ts).
  const served = new WeakMap<Socket, number>();

  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const seen = served.get(req.socket) ?? 0;
    served.set(req.socket, seen + 1);
    let reply: MetadataReply;
    let fetched: { vmId: string; path: string } | undefined;
    try {
      const ip = sourceIpOf(req.socket.remoteAddress);
      const md = ip === undefined ? undefined : source.lookup(ip);
      if (md === undefined) {
        reply = { status: 403, body: 'forbidden: unknown source address\n' };
      } else {
        const method = req.method ?? 'GET';
        const path = normalisePath(req.url ?? '/');
        const routed =
          path === undefined
            ? undefined
            : (handleNoCloud(method, path, md) ?? handleEc2({ method, path, headers: req.headers, firstOnConnection: seen === 0 }, md, tokens));
        reply = routed ?? { status: 404, body: 'not found\n' };
        if (reply.countsAsFetch && path !== undefined) fetched = { vmId: md.vmId, path };
      }
    } catch (err) {
      onError(err);
      reply = { status: 500, body: 'internal error\n' };
    }
    send(res, reply);
    // After the reply is written: the agent's bookkeeping must never delay or fail the guest.
    if (fetched) {
      try {
        source.onFetch(fetched.vmId, fetched.path);
      } catch (err) {
        onError(err);
      }
    }
  };

  const server = http.createServer({ maxHeaderSize: 8 * 1024 }, handle);
  // No route reads a body, so `Expect:` is answered with the final reply alone: node:http's
  // automatic `100 Continue` (or 417) would otherwise come first on the connection, ahead of a
  // token reply's TOKEN_REPLY_PREFIX.
  server.on('checkContinue', handle);
  server.on('checkExpectation', handle);
  // Guests are not trusted to be polite: slow or idle connections are cut short.
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;

  return {
    listen(host: string, port: number): Promise<{ port: number }> {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          server.on('error', onError);
          resolve({ port: (server.address() as AddressInfo).port });
        });
      });
    },
    close(): Promise<void> {
      if (!server.listening) return Promise.resolve();
      return new Promise((resolve, reject) => {
        // Idle keep-alive connections are dropped at once; busy ones get a moment to finish.
        const force = setTimeout(() => server.closeAllConnections(), 1_000);
        force.unref();
        server.close((err) => {
          clearTimeout(force);
          if (err) reject(err);
          else resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}
