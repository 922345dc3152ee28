import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordingExec } from './exec.ts';
import { defaultRouteAddress, underlayMtu } from './underlay.ts';

const host = (routes: Record<string, string>, mtus: Record<string, number>) =>
  new RecordingExec((_cmd, args) => {
    const line = args.join(' ');
    if (line.startsWith('-j route get ')) return routes[args[3]!] ? { stdout: JSON.stringify([{ dev: routes[args[3]!] }]) } : { code: 2, stderr: 'unreachable' };
    if (line === '-j route show default') return routes.default ? { stdout: JSON.stringify([{ dst: 'default', dev: routes.default }]) } : { stdout: '[]' };
    if (line.startsWith('-j link show dev ')) return { stdout: JSON.stringify([{ ifname: args[4], mtu: mtus[args[4]!] }]) };
    return { code: 1 };
  });

test('the MTU of the interface toward the control plane', async () => {
  const exec = host({ '192.0.2.1': 'eth1', default: 'eth0' }, { eth0: 1500, eth1: 1420 });
  assert.equal(await underlayMtu(exec, '192.0.2.1'), 1420);
  assert.deepEqual(exec.lines(), ['ip -j route get 192.0.2.1', 'ip -j link show dev eth1']);
});

test('beside the control plane (loopback): the default route; neither: unknown', async () => {
  assert.equal(await underlayMtu(host({ '127.0.0.1': 'lo', default: 'eth0' }, { eth0: 9000, lo: 65536 }), '127.0.0.1'), 9000);
  assert.equal(await underlayMtu(host({ '127.0.0.1': 'lo' }, { lo: 65536 }), '127.0.0.1'), undefined);
});

// `ip -j route get 1.1.1.1` as iproute2 prints it: a routing-table lookup, nothing is sent.
const routeGet = (out: { code?: number; stdout?: string; stderr?: string }) => new RecordingExec((cmd, args) => (cmd === 'ip' && args.join(' ') === '-j route get 1.1.1.1' ? out : { code: 1 }));

test("the host's address on its default route: the source the kernel would pick, one lookup, no packet", async () => {
  const exec = routeGet({ stdout: '[{"dst":"1.1.1.1","gateway":"192.0.2.1","dev":"eth0","prefsrc":"192.0.2.10","flags":[],"uid":0,"cache":[]}]\n' });
  assert.equal(await defaultRouteAddress(exec), '192.0.2.10');
  assert.deepEqual(exec.lines(), ['ip -j route get 1.1.1.1']);
});

test('no default route, or one that says no usable source: none', async () => {
  assert.equal(await defaultRouteAddress(routeGet({ code: 2, stderr: 'RTNETLINK answers: Network is unreachable\n' })), undefined);
  assert.equal(await defaultRouteAddress(routeGet({ stdout: '[{"dst":"1.1.1.1","dev":"lo","prefsrc":"127.0.0.1","flags":[],"uid":0,"cache":["local"]}]' })), undefined);
  assert.equal(await defaultRouteAddress(routeGet({ stdout: '[{"dst":"1.1.1.1","dev":"wg0","flags":[],"uid":0,"cache":[]}]' })), undefined);
  assert.equal(await defaultRouteAddress(routeGet({ stdout: 'not json' })), undefined);
});
