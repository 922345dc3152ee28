import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkAccess, checkQuery, internetAccessible } from './access.ts';
import type { PathModel } from './model.ts';

const model: PathModel = {
  services: [
    { network: 'net', name: 'lb', block: '10.0.0.16/28' },
    { network: 'net', name: 'app', block: '10.0.0.32/28' },
    { network: 'net', name: 'db', block: '10.0.0.48/28' },
    { network: 'other', name: 'far', block: '10.0.0.16/28' },
  ],
  paths: [
    { network: 'net', from: { cidr: '0.0.0.0/0' }, to: 'lb', proto: 'tcp', ports: [443, 443] },
    { network: 'net', from: { service: 'lb' }, to: 'app', proto: 'tcp', ports: [8000, 8100] },
    { network: 'net', from: { cidr: '192.168.0.0/24' }, to: 'app', proto: 'tcp', ports: [22, 22] },
    { network: 'net', from: { cidr: '10.0.0.32/29' }, to: 'db', proto: 'tcp', ports: [5432, 5432] },
    { network: 'net', from: { cidr: '10.0.0.40/29' }, to: 'db', proto: 'tcp', ports: [5432, 5432] },
    { network: 'net', from: { service: 'app' }, to: 'app', proto: 'udp', ports: [7946, 7946] },
  ],
};

test('allowed names the path that allows it', () => {
  const a = checkAccess(model, { service: 'lb' }, 'app', 8080, 'tcp');
  assert.equal(a.allowed, true);
  assert.deepEqual(a.allowed && a.path, model.paths[1]);
  const s = checkAccess(model, { service: 'app' }, 'app', 7946, 'udp');
  assert.equal(s.allowed, true, 'instances of a service reach each other through a path to itself');
});

test('denied says that no path allows it', () => {
  const d = checkAccess(model, { service: 'lb' }, 'app', 8101, 'tcp');
  assert.deepEqual(d, { allowed: false, reason: 'lb -> app:8101/tcp: no path allows it', partial: [] });
  assert.equal(checkAccess(model, { service: 'lb' }, 'app', 8080, 'udp').allowed, false, 'other protocol');
  assert.equal(checkAccess(model, { service: 'db' }, 'db', 5432, 'tcp').allowed, false, 'no path from db to itself');
  assert.equal(checkAccess(model, { service: 'lb' }, 'lb', 443, 'tcp').allowed, true, 'the internet includes lb itself');
});

test('a CIDR path admits a service inside it; two paths together may cover a source', () => {
  const a = checkAccess(model, { service: 'app' }, 'db', 5432, 'tcp');
  assert.equal(a.allowed, true);
  assert.deepEqual(a.allowed && a.paths, [model.paths[3], model.paths[4]]);
  const one = checkAccess(model, { cidr: '10.0.0.41/32' }, 'db', 5432, 'tcp');
  assert.deepEqual(one.allowed && one.path, model.paths[4]);
});

test('a source only partly admitted is denied, naming the path that admits part of it', () => {
  const d = checkAccess(model, { cidr: '192.168.0.0/16' }, 'app', 22, 'tcp');
  assert.equal(d.allowed, false);
  assert.equal(!d.allowed && d.reason, '192.168.0.0/16 -> app:22/tcp: only part of 192.168.0.0/16 is allowed (by 192.168.0.0/24 -> app:22/tcp)');
  assert.equal(checkAccess(model, { cidr: '192.168.0.9/32' }, 'app', 22, 'tcp').allowed, true);
});

test('internetAccessible: only a path from everywhere', () => {
  assert.equal(internetAccessible(model, 'lb', 443).allowed, true);
  assert.equal(internetAccessible(model, 'lb', 80).allowed, false);
  assert.equal(internetAccessible(model, 'app', 22).allowed, false, 'a narrower CIDR is not the internet');
});

test('bad queries name the field; checkAccess refuses them', () => {
  assert.deepEqual(checkQuery(model, { service: 'far' }, 'app', 80, 'tcp'), [{ field: 'from', message: 'service far is in network other, not net' }]);
  assert.deepEqual(checkQuery(model, { service: 'lb' }, 'nope', 80, 'tcp'), [{ field: 'to', message: 'no service nope' }]);
  assert.deepEqual(checkQuery(model, { cidr: '10.0.0.1/24' }, 'app', 0, 'tcp').map((e) => e.field), ['from', 'ports']);
  assert.throws(() => checkAccess(model, { service: 'nope' }, 'app', 80, 'tcp'), (e: Error & { field?: string }) => e.field === 'from' && /no service nope/.test(e.message));
});
