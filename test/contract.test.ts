// The API contract: the checked-in OpenAPI matches the route table; every error code has a
// status; layers depend one way only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { openApiDocument } from '../src/api/openapi.ts';
import { ERROR_STATUS } from '../src/api/errors.ts';
import { routes } from '../src/api/routes.ts';

const root = new URL('..', import.meta.url).pathname;

test('docs/openapi.json is generated from the route table (run `npm run openapi`)', () => {
  const checkedIn = JSON.parse(readFileSync(join(root, 'docs/openapi.json'), 'utf8'));
  assert.deepEqual(checkedIn, JSON.parse(JSON.stringify(openApiDocument())));
});

// Signing in is public too: it carries its token in the body (a wrong one is 401, test/sessions.test.ts).
test('every route but /healthz, /readyz, the sign-in and "am I signed in?" needs a token', () => {
  const open = Object.entries(routes).filter(([, r]) => r.access === 'public').map(([id]) => id);
  // getSession answers only about the cookie it is sent (a session's own csrf value, else null).
  assert.deepEqual(open, ['health', 'ready', 'createSession', 'getSession']);
});

test('every error code maps to a 4xx, except internal and unavailable (a control plane shutting down)', () => {
  for (const [code, status] of Object.entries(ERROR_STATUS)) {
    if (code === 'internal') assert.equal(status, 500);
    else if (code === 'unavailable') assert.equal(status, 503);
    else assert.ok(status >= 400 && status < 500, code);
  }
});

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
}

/** Every module a file imports or re-exports from (type-only imports included: they still tie the layers). */
function imports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  return [...src.matchAll(/^(?:import|export)[^'"]*?from\s*['"]([^'"]+)['"]|^import\s*['"]([^'"]+)['"]/gm)].map((m) => (m[1] ?? m[2])!);
}

/** The layer of a file under src/: its top directory, but agent/host apart from agent. */
function layerOf(file: string): string {
  const r = relative(join(root, 'src'), file);
  return r.startsWith('agent/host/') ? 'agent/host' : r.split('/')[0]!;
}

/**
 * The layer table of docs/architecture.md ("Layers and where things live"): which layers each
 * may import. A file may always import its own layer; `daemon` (the entry points) imports all.
 */
const MAY_IMPORT: Record<string, readonly string[]> = {
  api: ['core'],
  core: ['api'],
  lib: [],
  sdk: ['api', 'core', 'lib'],
  'agent/host': ['core', 'api', 'lib'],
  agent: ['agent/host', 'core', 'api', 'lib', 'sdk'],
  server: ['core', 'api', 'lib'],
  cli: ['sdk', 'api', 'core', 'lib'],
};

/** Named exceptions, each with its reason. */
const EXCEPTIONS: Record<string, string> = {
  // The one `Exec` door: the control plane runs qemu-img on uploaded images through it too.
  'server -> src/agent/host/exec.ts': 'server/image-inspector.ts',
  // The entry point loads the daemons for `up`, `server`, `agent`.
  'cli/main.ts -> daemon': 'cli/main.ts',
};

test('layers depend one way, as the table in docs/architecture.md says', () => {
  const broken: string[] = [];
  for (const f of files(join(root, 'src'))) {
    const from = layerOf(f);
    const allowed = MAY_IMPORT[from];
    if (!allowed) continue; // daemon
    for (const i of imports(f)) {
      if (!i.startsWith('.')) continue;
      const target = resolve(dirname(f), i);
      const to = layerOf(target);
      if (to === from || allowed.includes(to)) continue;
      if (EXCEPTIONS[`${from} -> ${relative(root, target)}`] || EXCEPTIONS[`${relative(join(root, 'src'), f)} -> ${to}`]) continue;
      broken.push(`${relative(root, f)} (${from}) imports ${i} (${to})`);
    }
  }
  assert.deepEqual(broken, []);
});

test('core and api do no I/O', () => {
  const io = /^(node:)?(fs|child_process|net|http|https|dgram|os)(\/|$)/;
  for (const layer of ['src/core', 'src/api']) {
    for (const f of files(join(root, layer))) {
      for (const i of imports(f)) assert.doesNotMatch(i, io, `${relative(root, f)} imports ${i}`);
    }
  }
});

test('the layer rule bites: a file of core importing the server would be caught', () => {
  assert.equal(layerOf(join(root, 'src/agent/host/exec.ts')), 'agent/host');
  assert.equal(layerOf(join(root, 'src/agent/agent.ts')), 'agent');
  assert.equal(MAY_IMPORT.core!.includes('server'), false);
  assert.deepEqual(imports(join(root, 'src/server/store/nics.ts')).filter((i) => i.startsWith('.')), ['./rows.ts', './store.ts']);
});
