import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startPlan, TEMPLATE_IDENTITY, templateCmdline, WARM_IDENTITY_BYTES, WARM_IDENTITY_BYTES_V1, WARM_READY_LINE, warmIdentity, type WarmEntry } from './warm.ts';
import { qemuArgs, vmPaths, WARM_FW_CFG } from './qemu-args.ts';
import { warmTemplateSpec } from './vm-spec.ts';

const entry = (over: Partial<WarmEntry> = {}): WarmEntry => ({ id: 'w1', node: 'n1', state: 'ready', reason: null, cpus: 1, memoryBytes: 256 * 1024 ** 2, nics: 1, ...over });
const vm = { node: 'n1', cpus: 1, memoryBytes: 256 * 1024 ** 2, nics: 1, dataDisks: 0, clone: false };

test('startPlan: warm only on a ready warm state of the node with the same cpus, memory and NIC count', () => {
  assert.deepEqual(startPlan([entry()], vm), { start: 'warm', warm: 'w1' });
  assert.deepEqual(startPlan([], vm), { start: 'cold', reason: null }, 'an image never warmed: cold, nothing to explain');
  const why = (entries: WarmEntry[], v = vm) => {
    const p = startPlan(entries, v);
    assert.equal(p.start, 'cold');
    return p.start === 'cold' ? p.reason : '';
  };
  assert.equal(why([entry({ node: 'n2' })]), 'no warm state on node n1 (warm on n2)');
  assert.equal(why([entry({ state: 'warming' })]), 'the warm state on n1 is still warming');
  assert.equal(why([entry({ state: 'failed', reason: 'guest never signalled warm-ready within 60 s' })]), 'warming failed on n1: guest never signalled warm-ready within 60 s');
  assert.match(why([entry()], { ...vm, cpus: 2 })!, /^different size: the warm state is 1 cpu, 256 MiB; this VM 2 cpu, 256 MiB$/);
  assert.match(why([entry()], { ...vm, memoryBytes: 512 * 1024 ** 2 })!, /this VM 1 cpu, 512 MiB/);
  assert.equal(why([entry()], { ...vm, nics: 2 }), 'different NIC count: the warm state has 1, this VM 2');
  assert.equal(why([entry()], { ...vm, dataDisks: 1 }), 'data disks: the warm state has none');
  assert.equal(why([entry()], { ...vm, clone: true }), "a clone starts from its source's snapshot");
  assert.deepEqual(startPlan([entry({ node: 'n2', id: 'w2' }), entry()], vm), { start: 'warm', warm: 'w1' }, 'the one of its node');
});

test('identity: fixed length (the guest listed the fw_cfg file with its size in the template), checked', () => {
  const id = warmIdentity('0123456789abcdef', '52:54:00:12:34:56', 'ab'.repeat(32));
  assert.equal(id, `gen=0123456789abcdef mac=52:54:00:12:34:56 seed=${'ab'.repeat(32)}`.padEnd(WARM_IDENTITY_BYTES, ' '));
  assert.equal(id.length, TEMPLATE_IDENTITY.length);
  assert.equal(TEMPLATE_IDENTITY.trimEnd(), `gen=${'0'.repeat(16)} mac=00:00:00:00:00:00 seed=${'0'.repeat(64)}`);
  assert.throws(() => warmIdentity('12', '52:54:00:12:34:56', 'ab'.repeat(32)), /16 hex/);
  assert.throws(() => warmIdentity('0123456789abcdef', '52:54:00:12:34:56,x=y', 'ab'.repeat(32)), /bad MAC/);
  assert.throws(() => warmIdentity('0123456789abcdef', '52:54:00:12:34:56', 'zz'.repeat(32)), /seed/);
});

test('identity with an address: the lease DHCP would give, as words the guest reads; the longest fits; a 112-byte state gets none', () => {
  const gen = '0123456789abcdef';
  const mac = '52:54:00:12:34:56';
  const seed = 'ab'.repeat(32);
  const address = { ip: '10.200.0.7', prefix: 24, gateway: '10.200.0.1', mtu: 1420, domain: 'default.internal' };
  const id = warmIdentity(gen, mac, seed, address);
  assert.equal(id.length, WARM_IDENTITY_BYTES);
  assert.deepEqual(id.trim().split(/ +/).slice(3), ['ip=10.200.0.7/24', 'gw=10.200.0.1', 'mtu=1420', 'dom=default.internal']);
  const longest = { ip: '255.255.255.255', prefix: 32, gateway: '255.255.255.255', mtu: 65535, domain: `${'n'.repeat(63)}.internal` };
  assert.match(warmIdentity(gen, mac, seed, longest), new RegExp(`dom=${'n'.repeat(63)}\\.internal +$`), 'the longest network name fits');
  // A warm state saved with the first, 112-byte identity: its clones keep that length, and ask DHCP.
  const old = warmIdentity(gen, mac, seed, address, WARM_IDENTITY_BYTES_V1);
  assert.equal(old, `gen=${gen} mac=${mac} seed=${seed}`);
  for (const [bad, re] of [
    [{ ip: '10.200.0.300' }, /ip/],
    [{ gateway: '10.200.0.1 mac=x' }, /gateway/],
    [{ prefix: 33 }, /prefix/],
    [{ mtu: 100 }, /mtu/],
    [{ domain: 'a b' }, /domain/],
  ] as const) {
    assert.throws(() => warmIdentity(gen, mac, seed, { ...address, ...bad }), re);
  }
});

test('the template: the image with butter.warm=1, one NIC on a tap of its own, the zero identity in fw_cfg and a vmgenid', () => {
  assert.equal(templateCmdline('console=ttyS0 quiet'), 'console=ttyS0 quiet butter.warm=1');
  assert.equal(templateCmdline('console=ttyS0 butter.warm=1'), 'console=ttyS0 butter.warm=1');
  const t = warmTemplateSpec(
    { id: 'abc123', image: { name: 'tiny', kind: 'kernel', format: null, kernel: 'k'.repeat(64), initrd: 'i'.repeat(64), rootDisk: 'r'.repeat(64), rootFormat: 'raw', cmdline: 'console=ttyS0' }, cpus: 1, memoryBytes: 256 * 1024 ** 2, state: 'warming' },
    (sha) => `/cache/${sha.slice(0, 1)}`,
  );
  assert.deepEqual([t.id, t.cpus, t.memoryMiB, t.nics], ['abc123', 1, 256, [{ tap: 'bwabc123', mac: '52:54:00:00:00:01' }]]);
  assert.deepEqual(t.boot, { kind: 'kernel', kernel: '/cache/k', initrd: '/cache/i', cmdline: 'console=ttyS0 butter.warm=1', rootDisk: '/cache/r', rootFormat: 'raw' });
  const argv = qemuArgs(t, vmPaths('/s', 'abc123'), 'tcg');
  const i = argv.indexOf('-fw_cfg');
  assert.deepEqual(argv.slice(i, i + 4), ['-fw_cfg', `name=${WARM_FW_CFG},file=/s/vms/abc123/identity`, '-device', 'vmgenid,guid=auto']);
  assert.ok(!argv.some((a) => a.includes(TEMPLATE_IDENTITY)), 'the identity (a clone\'s seed) is never in argv, which every local user can read');
  assert.ok(argv.indexOf('-fw_cfg') > argv.indexOf('-smbios'), 'after the smbios serial');
  assert.ok(argv.includes('netdev=n0,mac=52:54:00:00:00:01'.replace(/^/, 'virtio-net-pci,')));
});

test('the ready line: any prefix, a line of its own', () => {
  assert.ok(WARM_READY_LINE.test('boot...\nbutter-tiny: warm-ready\r\n'));
  assert.ok(!WARM_READY_LINE.test('butter-tiny: warm-ready soon\n'));
  assert.ok(!WARM_READY_LINE.test('warm-ready\n'));
});
