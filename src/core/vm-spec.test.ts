import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { DesiredVm } from '../api/schemas/desired.ts';
import { blobsOf, bridgeName, guestDevice, SMBIOS_SERIAL, tapName, vmSpec } from './vm-spec.ts';

test('interface names fit the kernel limits and stay distinct', () => {
  assert.equal(bridgeName('default'), 'bt-default');
  assert.equal(tapName('0123456789ab'), 'bt0123456789ab');
  fc.assert(
    fc.property(fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/), (n) => {
      assert.ok(bridgeName(n).length <= 13);
    }),
  );
  assert.notEqual(bridgeName('production-frontend'), bridgeName('production-backend'));
});

test('a kernel image VM maps to a direct-boot spec with the NoCloud SMBIOS serial', () => {
  const vm: DesiredVm = {
    id: 'abc123def456',
    name: 'demo',
    cpus: 2,
    memoryBytes: 384 * 1024 ** 2,
    diskBytes: 1024 ** 3,
    disks: [{ index: 1, sizeBytes: 16 * 1024 ** 2 }],
    power: 'running',
    image: { name: 'tiny', kind: 'kernel', format: null, kernel: 'k'.repeat(64), initrd: 'i'.repeat(64), rootDisk: 'r'.repeat(64), rootFormat: 'raw', cmdline: 'console=ttyS0' },
    nics: [
      { network: 'default', ip: '10.200.0.2', mac: '52:54:00:aa:bb:cc' },
      { network: 'lan', ip: '10.20.0.7', mac: '52:54:01:aa:bb:cd' },
    ],
    userData: '',
    sshKeys: [],
    metadataTokens: 'optional',
    restartGen: 0,
    restart: 'on-failure',
  };
  assert.deepEqual(vmSpec(vm, (sha) => `/img/${sha.slice(0, 1)}`), {
    id: 'abc123def456',
    name: 'demo',
    cpus: 2,
    memoryMiB: 384,
    diskBytes: 1024 ** 3,
    dataDisks: [{ index: 1, sizeBytes: 16 * 1024 ** 2 }],
    boot: { kind: 'kernel', kernel: '/img/k', initrd: '/img/i', cmdline: 'console=ttyS0', rootDisk: '/img/r', rootFormat: 'raw' },
    // eth1's tap: the VM's tap name and the NIC's index, still within 15 characters.
    nics: [
      { tap: 'btabc123def456', mac: '52:54:00:aa:bb:cc' },
      { tap: 'btabc123def4561', mac: '52:54:01:aa:bb:cd' },
    ],
    smbiosSerial: SMBIOS_SERIAL,
  });
  // Disks carry the format they are inspected and opened as; kernel and initrd are not disks.
  assert.deepEqual(blobsOf(vm), [{ sha256: 'k'.repeat(64) }, { sha256: 'i'.repeat(64) }, { sha256: 'r'.repeat(64), format: 'raw' }]);
  const disk = { ...vm, image: { name: 'd', kind: 'disk' as const, format: 'qcow2' as const, disk: 'd'.repeat(64), rootFormat: null, cmdline: null } };
  assert.deepEqual(blobsOf(disk), [{ sha256: 'd'.repeat(64), format: 'qcow2' }]);
  // A desired state without data disks (an older control plane) maps to none.
  const { disks: _, ...without } = vm;
  assert.deepEqual(vmSpec(without, (sha) => sha).dataDisks, []);
});

test('guest device names follow the virtio order: the root disk vda, data disk 1 vdb, ...', () => {
  assert.deepEqual([0, 1, 2, 8].map(guestDevice), ['vda', 'vdb', 'vdc', 'vdi']);
});
