/**
 * The web panel's files: `dist/panel/` (vite's build of `panel/`) served at `/`, public (the
 * files hold no secret: everything comes from the API with the session cookie). An unknown
 * path outside the API answers index.html (the panel routes by itself); `/v1/…`, `/healthz`,
 * `/readyz` and `/metrics` are the API's, whose unknown paths stay JSON 404s.
 *
 * Caching: files under `assets/` carry a content hash in their name, so they are immutable for
 * a year; index.html (and anything else unhashed) must be revalidated each time (`no-cache`),
 * so a rebuilt panel reaches the browser at once.
 *
 * Every answer of the panel carries a strict Content-Security-Policy: scripts only from the
 * control plane's own files (no inline script, no eval, no remote origin), connections only to
 * itself (the API, the event stream, the console WebSocket), no framing, no referrer. Inline
 * styles are allowed: xterm.js writes its theme into a <style> element, and with no remote
 * origin in img-src or connect-src a style has nowhere to send anything.
 *
 * Without a build (`dist/panel/index.html` missing at start), `/` answers a short page saying to
 * run `npm run build`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** `dist/panel/` of this package: two levels above this file in `src/server/` and in `dist/server/` alike. */
export const PANEL_DIR = fileURLToPath(new URL('../../dist/panel/', import.meta.url));

export const PANEL_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': PANEL_CSP,
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
};

const IMMUTABLE = 'public, max-age=31536000, immutable';

/** Whether a URL path is the API's (its unknown paths answer the JSON 404, never the panel). */
export function isApiPath(url: string): boolean {
  const first = url.split('?')[0]!.split('/')[1] ?? '';
  return first === 'v1' || first === 'healthz' || first === 'readyz' || first === 'metrics';
}

function setPanelHeaders(set: (name: string, value: string) => void, file: string): void {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) set(k, v);
  set('cache-control', /(^|\/)assets\/[^/]+$/.test(file) ? IMMUTABLE : 'no-cache');
}

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Butter</title></head>
<body><h1>Butter</h1><p>The web panel is not built. Run <code>npm run build</code> in Butter's checkout, then restart the control plane.</p>
<p>The API is at <code>/v1</code> (<a href="/v1/openapi.json">/v1/openapi.json</a>, with a token).</p></body></html>
`;

/**
 * Serves the panel from `dir` and returns the fallback for paths no route took: index.html (or
 * the "not built" page) for a GET or HEAD outside the API, else `false` (the JSON 404).
 */
export function servePanel(app: FastifyInstance, dir: string = PANEL_DIR): (req: FastifyRequest, reply: FastifyReply) => FastifyReply | false {
  const built = existsSync(join(dir, 'index.html'));
  if (built) {
    void app.register(fastifyStatic, {
      root: dir,
      prefix: '/',
      cacheControl: false,
      etag: true,
      lastModified: true,
      dotfiles: 'deny',
      setHeaders: (res, path) => setPanelHeaders((k, v) => res.setHeader(k, v), path.slice(dir.length)),
    });
  }
  return (req, reply) => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || isApiPath(req.url)) return false;
    if (!built) {
      setPanelHeaders((k, v) => reply.header(k, v), 'index.html');
      return reply.code(200).type('text/html; charset=utf-8').send(NOT_BUILT);
    }
    return reply.code(200).sendFile('index.html');
  };
}
