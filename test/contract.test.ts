// The API contract: the checked-in OpenAPI matches the route table; every error code has a
// status; layers depend one way only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { openApiDocument } from '../src/api/openapi.ts';
import { ERROR_STATUS } from '../src/api/errors.ts';
import { routes } from '../src/api/routes.ts';

const root = new URL('..', import.meta.url).pathname;

test('docs/openapi.json is generated from the route table (run `npm run openapi`)', () => {
  const checkedIn = JSON.parse(readFileSync(join(root, 'docs/openapi.json'), 'utf8'));
  assert.deepEqual(checkedIn, JSON.parse(JSON.stringify(openApiDocument())));
});

test('every route but /healthz and /readyz needs a token', () => {
  const open = Object.entries(routes).filter(([, r]) => r.access === 'public').map(([id]) => id);
  assert.deepEqual(open, ['health', 'ready']);
});

test('every error code maps to a 4xx, except internal', () => {
  for (const [code, status] of Object.entries(ERROR_STATUS)) {
    if (code === 'internal') assert.equal(status, 500);
    else assert.ok(status >= 400 && status < 500, code);
  }
});

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
}

function imports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  return [...src.matchAll(/^import[^'"]*['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
}

test('layers depend one way: core and api do no I/O; cli uses only sdk and api', () => {
  const io = /^(node:)?(fs|child_process|net|http|https|dgram|os)(\/|$)/;
  for (const layer of ['src/core', 'src/api']) {
    for (const f of files(join(root, layer))) {
      for (const i of imports(f)) {
        assert.doesNotMatch(i, io, `${relative(root, f)} imports ${i}`);
        assert.doesNotMatch(i, /\/(server|agent|sdk|cli|daemon)\//, `${relative(root, f)} imports ${i}`);
      }
    }
  }
  // Shared helpers (atomic state files) that any I/O layer may use: they import no layer.
  for (const f of files(join(root, 'src/lib'))) {
    for (const i of imports(f)) assert.doesNotMatch(i, /^\./, `${relative(root, f)} imports ${i}`);
  }
  for (const f of files(join(root, 'src/cli'))) {
    if (f.endsWith('main.ts')) continue; // the entry point loads the daemons for `up`, `server`, `agent`
    for (const i of imports(f)) assert.doesNotMatch(i, /\/(server|agent|daemon)\//, `${relative(root, f)} imports ${i}`);
  }
  for (const f of files(join(root, 'src/server'))) {
    // ...but the one `Exec` door: the control plane runs qemu-img on uploaded images through it too.
    for (const i of imports(f)) if (!i.endsWith('/agent/host/exec.ts')) assert.doesNotMatch(i, /\/(agent|cli|daemon)\//, `${relative(root, f)} imports ${i}`);
  }
});
