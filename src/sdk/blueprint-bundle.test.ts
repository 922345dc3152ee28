import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlueprintError, parseBlueprint, renderUserData } from '../core/blueprint/index.ts';
import { loadBundle } from './blueprint-bundle.ts';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'butter-bundle-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const HEAD = 'instance: { memory: 1G, cpus: 1 }\nimage: { name: tiny }\ninitialization:\n';

test('loadBundle reads the blueprint and its templates relative to its directory', () => {
  withDir((dir) => {
    mkdirSync(join(dir, 'svc', 'scripts'), { recursive: true });
    writeFileSync(join(dir, 'svc', 'blueprint.yml'), `${HEAD}  - path: scripts/start.sh\n    vars: { Who: { required: true } }\n`);
    writeFileSync(join(dir, 'svc', 'scripts', 'start.sh'), '#!/bin/sh\necho {{ Who }}\n');
    const b = loadBundle(join(dir, 'svc', 'blueprint.yml'));
    assert.equal(b.file, 'blueprint.yml');
    assert.deepEqual(b.files, { 'scripts/start.sh': '#!/bin/sh\necho {{ Who }}\n' });
    const bp = parseBlueprint(b.blueprint, b.file);
    assert.equal(renderUserData(bp, { files: b.files, vars: { Who: 'me' }, builtins: { service: 's', network: 'n', index: 0, dnsName: 's.n.internal' } }), '#!/bin/sh\necho me\n');
  });
});

function bundleError(fn: () => unknown): BlueprintError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof BlueprintError, String(e));
    return e;
  }
  assert.fail('no error');
}

test('a missing template file: the key, its line and the path tried', () => {
  withDir((dir) => {
    writeFileSync(join(dir, 'bp.yml'), `${HEAD}  - path: a.sh\n  - path: missing.sh\n`);
    writeFileSync(join(dir, 'a.sh'), '#!/bin/sh\n');
    const e = bundleError(() => loadBundle(join(dir, 'bp.yml')));
    assert.equal(e.message, `bp.yml:5:11: initialization[1].path: no such file (tried ${join(dir, 'missing.sh')})`);
  });
});

test('templates cannot leave the blueprint\'s directory: not by path, not by symlink', () => {
  withDir((dir) => {
    mkdirSync(join(dir, 'svc'));
    writeFileSync(join(dir, 'secret'), 'key');
    symlinkSync(join(dir, 'secret'), join(dir, 'svc', 'link.sh'));
    writeFileSync(join(dir, 'svc', 'bp.yml'), `${HEAD}  - path: link.sh\n`);
    const e = bundleError(() => loadBundle(join(dir, 'svc', 'bp.yml')));
    assert.equal(e.message, `bp.yml:4:11: initialization[0].path: ${join(dir, 'svc', 'link.sh')} leads outside the blueprint's directory (to ${join(dir, 'secret')})`);
    writeFileSync(join(dir, 'svc', 'bp.yml'), `${HEAD}  - path: ../secret\n`);
    assert.equal(bundleError(() => loadBundle(join(dir, 'svc', 'bp.yml'))).path, 'initialization[0].path');
    // A symlink that stays inside is fine.
    writeFileSync(join(dir, 'svc', 'real.sh'), '#!/bin/sh\n');
    symlinkSync('real.sh', join(dir, 'svc', 'alias.sh'));
    writeFileSync(join(dir, 'svc', 'bp.yml'), `${HEAD}  - path: alias.sh\n`);
    assert.deepEqual(loadBundle(join(dir, 'svc', 'bp.yml')).files, { 'alias.sh': '#!/bin/sh\n' });
  });
});

test('a directory or an oversized file is not a template', () => {
  withDir((dir) => {
    mkdirSync(join(dir, 'd'));
    writeFileSync(join(dir, 'big.sh'), 'x'.repeat(64 * 1024 + 1));
    writeFileSync(join(dir, 'bp.yml'), `${HEAD}  - path: d\n`);
    assert.equal(bundleError(() => loadBundle(join(dir, 'bp.yml'))).detail, `${join(dir, 'd')} is not a file`);
    writeFileSync(join(dir, 'bp.yml'), `${HEAD}  - path: big.sh\n`);
    assert.equal(bundleError(() => loadBundle(join(dir, 'bp.yml'))).detail, `${join(dir, 'big.sh')} is 64.0K; user-data may be at most 64K`);
  });
});

test('a missing blueprint is an error naming it', () => {
  assert.throws(() => loadBundle('/nonexistent/bp.yml'), (e: unknown) => e instanceof Error && e.message === 'blueprint: cannot read /nonexistent/bp.yml: no such file');
});
