import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cidrRange, findDuplicate, parsePortSpec, validatePath, type Path, type PathModel } from './model.ts';

const model: PathModel = {
  services: [
    { network: 'net', name: 'web', block: '10.0.0.16/28' },
    { network: 'net', name: 'db', block: '10.0.0.32/28' },
    { network: 'other', name: 'api', block: '10.0.0.16/28' },
  ],
  paths: [{ network: 'net', from: { service: 'web' }, to: 'db', proto: 'tcp', ports: [5432, 5432] }],
};
const path = (p: Partial<Path>): Path => ({ network: 'net', from: { service: 'web' }, to: 'db', proto: 'tcp', ports: [80, 80], ...p });
const fields = (p: Partial<Path>) => validatePath(model, path(p)).map((e) => `${e.field}: ${e.message}`);

test('a good path has no problems, from a service or a CIDR (the internet, one address)', () => {
  assert.deepEqual(fields({}), []);
  assert.deepEqual(fields({ from: { cidr: '0.0.0.0/0' } }), []);
  assert.deepEqual(fields({ from: { cidr: '192.168.1.7/32' }, ports: [8000, 8100], proto: 'udp' }), []);
});

test('bad paths: each problem names its field', () => {
  assert.deepEqual(fields({ ports: [0, 0] }), ['ports: port 0 is out of range 1..65535']);
  assert.deepEqual(fields({ ports: [80, 70000] }), ['ports: port 70000 is out of range 1..65535']);
  assert.deepEqual(fields({ ports: [90, 80] }), ['ports: port range 90-80 is backwards (low > high)']);
  assert.deepEqual(fields({ ports: [1.5, 2] }), ['ports: port 1.5 is out of range 1..65535']);
  assert.deepEqual(fields({ proto: 'icmp' as never }), ['proto: protocol "icmp" is not tcp or udp']);
  assert.deepEqual(fields({ to: 'nope' }), ['to: no service nope']);
  assert.deepEqual(fields({ to: 'api' }), ['to: service api is in network other, not net']);
  assert.deepEqual(fields({ from: { service: 'nope' } }), ['from: no service nope']);
  assert.match(fields({ from: { service: 'api' } })[0]!, /^from: service api is in network other, not net: paths stay inside one network/);
  assert.deepEqual(fields({ from: { cidr: '10.0.0.5/8' } }), ['from: 10.0.0.5/8 has host bits set; did you mean 10.0.0.0/8?']);
  assert.deepEqual(fields({ from: { cidr: '10.0.0.0/33' } }), ['from: bad IPv4 CIDR "10.0.0.0/33"']);
  assert.deepEqual(fields({ from: { cidr: '300.0.0.0/8' } }), ['from: bad IPv4 CIDR "300.0.0.0/8"']);
  assert.equal(fields({ to: 'nope', ports: [0, 1], from: { cidr: 'x' } }).length, 3, 'all problems, not the first');
});

test('a duplicate is found (for a conflict), a path differing in anything is not one', () => {
  assert.ok(findDuplicate(model, path({ ports: [5432, 5432] })));
  assert.equal(findDuplicate(model, path({ ports: [5432, 5433] })), undefined);
  assert.equal(findDuplicate(model, path({ ports: [5432, 5432], proto: 'udp' })), undefined);
  assert.equal(findDuplicate(model, path({ ports: [5432, 5432], from: { cidr: '10.0.0.16/28' } })), undefined);
});

test('port specs: PORT, LO-HI, with /tcp or /udp; tcp by default', () => {
  assert.deepEqual(parsePortSpec('80'), { proto: 'tcp', ports: [80, 80] });
  assert.deepEqual(parsePortSpec('8000-8100/udp'), { proto: 'udp', ports: [8000, 8100] });
  assert.deepEqual(parsePortSpec('53/tcp'), { proto: 'tcp', ports: [53, 53] });
  assert.deepEqual(parsePortSpec('0'), { field: 'ports', message: 'port 0 is out of range 1..65535' });
  assert.deepEqual(parsePortSpec('70000'), { field: 'ports', message: 'port 70000 is out of range 1..65535' });
  assert.deepEqual(parsePortSpec('80/sctp'), { field: 'proto', message: 'protocol "sctp" is not tcp or udp' });
  assert.equal((parsePortSpec('http') as { field: string }).field, 'ports');
  assert.equal((parsePortSpec('80-') as { field: string }).field, 'ports');
});

test('CIDR ranges, from /0 to /32', () => {
  assert.deepEqual(cidrRange('0.0.0.0/0'), [0, 2 ** 32 - 1]);
  assert.deepEqual(cidrRange('10.0.0.16/28'), [0x0a000010, 0x0a00001f]);
  assert.deepEqual(cidrRange('255.255.255.255/32'), [2 ** 32 - 1, 2 ** 32 - 1]);
});
