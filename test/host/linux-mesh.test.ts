/**
 * LinuxMeshHost against real WireGuard (wireguard-go here) in a namespace of its own: the
 * peers it reports are those on the interface, and none once the interface is gone, which is
 * how an agent tells its own restart (peers still there, rules too) from a reboot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SystemExec } from '../../src/agent/host/exec.ts';
import { LinuxMeshHost } from '../../src/agent/host/linux-mesh.ts';
import { NetnsExec } from '../../src/agent/host/netns-exec.ts';
import { loadOrCreateKey } from '../../src/agent/wireguard-key.ts';
import { TEST_WG_KEYS } from '../helpers.ts';
import { stopWireguardGo } from './wireguard-go.ts';

test('the mesh host reports the peers on its interface, and none without one', async () => {
  const id = randomBytes(3).toString('hex');
  const ns = `bt-mesh-${id}`;
  const iface = `btm${id}`;
  const dir = mkdtempSync(join(tmpdir(), 'butter-mesh-'));
  try {
    assert.equal(spawnSync('ip', ['netns', 'add', ns]).status, 0);
    const host = new LinuxMeshHost({ exec: new NetnsExec(new SystemExec(), ns), stateDir: dir, key: loadOrCreateKey(dir), iface, listenPort: 51820, mark: 'butter-mesh:test' });
    const [other, laptop] = TEST_WG_KEYS;
    assert.deepEqual([...(await host.peerKeys())], [], 'no interface yet');
    const mesh = { address: '100.127.0.2', prefix: 16, mtu: 1440, peers: [{ node: 'n2', publicKey: other, endpoint: null, address: '100.127.0.3' }] };
    await host.apply(mesh, [{ name: 'laptop', network: 'lan', publicKey: laptop, address: '10.20.0.4' }]);
    assert.deepEqual(new Set(await host.peerKeys()), new Set([other, laptop]));
    const alias = () => (JSON.parse(spawnSync('ip', ['-n', ns, '-j', 'link', 'show', iface], { encoding: 'utf8' }).stdout) as { ifalias?: string }[])[0]?.ifalias;
    assert.equal(alias(), 'butter-mesh:test', 'marked, so that butter down knows it is ours');
    await host.apply(mesh, []);
    assert.deepEqual([...(await host.peerKeys())], [other], 'a client taken off is gone from the interface');
    await host.teardown();
    assert.deepEqual([...(await host.peerKeys())], [], 'interface deleted');
  } finally {
    await stopWireguardGo([{ ns, iface }]);
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  }
});
