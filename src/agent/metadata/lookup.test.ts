import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DesiredNetwork, DesiredVm, NodeDesired } from '../../api/schemas/desired.ts';
import { vmBySource } from './lookup.ts';

function vm(id: string, nics: DesiredVm['nics'], power: DesiredVm['power'] = 'running'): DesiredVm {
  return {
    id,
    name: `vm-${id}`,
    cpus: 1,
    memoryBytes: 256 << 20,
    diskBytes: 1 << 30,
    power,
    image: { name: 'tiny', kind: 'kernel', format: null, rootFormat: null, cmdline: null },
    nics,
    userData: `secret of ${id}`,
    sshKeys: [],
    restartGen: 0,
    restart: 'on-failure',
    metadataTokens: 'optional',
  };
}

function net(name: string, cidr: string, remotes: DesiredNetwork['remotes'] = []): DesiredNetwork {
  return { name, cidr, gateway: cidr.replace(/0\/\d+$/, '1'), mtu: 1390, nat: true, vni: 100, remotes };
}

function desired(vms: DesiredVm[], networks: DesiredNetwork[] = [net('blue', '10.1.0.0/16'), net('red', '10.1.0.0/16'), net('green', '10.2.0.0/16')]): NodeDesired {
  return { revision: 7, vms, networks, mesh: null };
}

// blue and red share a CIDR: the same address is a different VM on each.
const a = vm('aaaa', [
  { network: 'blue', ip: '10.1.0.5', mac: '52:54:00:00:00:0a' },
  { network: 'green', ip: '10.2.0.9', mac: '52:54:01:00:00:0a' },
]);
const b = vm('bbbb', [{ network: 'red', ip: '10.1.0.5', mac: '52:54:00:00:00:0b' }]);
const c = vm('cccc', [{ network: 'blue', ip: '10.1.0.6', mac: '52:54:00:00:00:0c' }]);

describe('vmBySource', () => {
  test('finds a VM by its eth0 address on eth0 network', () => {
    assert.equal(vmBySource(desired([a, b, c]), 'blue', '10.1.0.5')?.id, 'aaaa');
    assert.equal(vmBySource(desired([a, b, c]), 'blue', '10.1.0.6')?.id, 'cccc');
  });

  test("finds a VM by a secondary NIC's address, on that NIC's network only", () => {
    const d = desired([a, b, c]);
    assert.equal(vmBySource(d, 'green', '10.2.0.9')?.id, 'aaaa');
    assert.equal(vmBySource(d, 'blue', '10.2.0.9'), undefined, "eth1's address arriving on eth0's network");
    assert.equal(vmBySource(d, 'green', '10.1.0.5'), undefined, "eth0's address arriving on eth1's network");
  });

  test('the same address on another network (a shared CIDR) is never the other VM', () => {
    const d = desired([a, b, c]);
    assert.equal(vmBySource(d, 'red', '10.1.0.5')?.id, 'bbbb');
    assert.equal(vmBySource(d, 'blue', '10.1.0.5')?.id, 'aaaa');
    // Alone on the node, each is still only found on its own network.
    assert.equal(vmBySource(desired([b]), 'blue', '10.1.0.5'), undefined);
    assert.equal(vmBySource(desired([a]), 'red', '10.1.0.5'), undefined);
    assert.equal(vmBySource(desired([c]), 'red', '10.1.0.6'), undefined);
  });

  test('an unknown address, network or desired state finds nothing', () => {
    const d = desired([a, b, c]);
    assert.equal(vmBySource(d, 'blue', '10.1.0.7'), undefined);
    assert.equal(vmBySource(d, 'nope', '10.1.0.5'), undefined);
    assert.equal(vmBySource(desired([]), 'blue', '10.1.0.5'), undefined);
    assert.equal(vmBySource(undefined, 'blue', '10.1.0.5'), undefined, 'before the first desired state');
  });

  test('a VM being deleted is not served, and does not shadow the live VM given its address', () => {
    const gone = vm('dead', [{ network: 'blue', ip: '10.1.0.5', mac: '52:54:00:00:00:0d' }], 'deleted');
    assert.equal(vmBySource(desired([gone]), 'blue', '10.1.0.5'), undefined);
    assert.equal(vmBySource(desired([gone, a]), 'blue', '10.1.0.5')?.id, 'aaaa');
    assert.equal(vmBySource(desired([a, gone]), 'blue', '10.1.0.5')?.id, 'aaaa');
    const goneTwoNics = { ...a, id: 'dead2', power: 'deleted' as const };
    assert.equal(vmBySource(desired([goneTwoNics]), 'green', '10.2.0.9'), undefined, 'nor by a secondary NIC');
  });

  test('a stopped VM is served: its address stays bound to its own tap until it is deleted', () => {
    const stopped = { ...c, power: 'stopped' as const };
    assert.equal(vmBySource(desired([stopped]), 'blue', '10.1.0.6')?.id, 'cccc');
  });

  test('a VM on another node (only a remote of the network) is not served here', () => {
    const remote = net('blue', '10.1.0.0/16', [{ node: 'n2', address: '100.127.0.2', vms: [{ name: 'far', mac: '52:54:00:00:00:ff', ip: '10.1.0.8' }] }]);
    assert.equal(vmBySource(desired([a], [remote]), 'blue', '10.1.0.8'), undefined);
  });

  test('NICs with no address yet never match, whatever the source looks like', () => {
    const pending = vm('pend', [{ network: 'blue', ip: '', mac: '52:54:00:00:00:0e' }]);
    for (const src of ['', ' ', '0.0.0.0', 'undefined', 'null']) assert.equal(vmBySource(desired([pending]), 'blue', src), undefined, JSON.stringify(src));
  });

  test('only the source address identifies: not the name, id, MAC, instance-id or any other form of the address', () => {
    const d = desired([a, b, c]);
    for (const key of ['aaaa', 'vm-aaaa', 'i-aaaa', '52:54:00:00:00:0a', '::ffff:10.1.0.5', '10.1.0.05', '010.1.0.5', ' 10.1.0.5', '10.1.0.5 ', '10.1.0.5/32']) {
      assert.equal(vmBySource(d, 'blue', key), undefined, JSON.stringify(key));
    }
  });

  test('two live VMs claiming one address on one network: neither is served', () => {
    const twin = vm('twin', [{ network: 'blue', ip: '10.1.0.5', mac: '52:54:00:00:00:1a' }]);
    assert.equal(vmBySource(desired([a, twin]), 'blue', '10.1.0.5'), undefined);
    assert.equal(vmBySource(desired([a, twin]), 'green', '10.2.0.9')?.id, 'aaaa', 'its other, unshared NIC still is');
  });
});
