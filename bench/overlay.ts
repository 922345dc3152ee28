/**
 * TCP throughput over Butter's full overlay path between two machines (namespaces): a VM
 * stand-in (veth in its own namespace) → the network's bridge → VXLAN → the WireGuard mesh →
 * the other machine, against plain WireGuard between the same two machines, measured with
 * iperf3 in the same run. Both sides are set up by Butter's own adapters (`LinuxMeshHost`,
 * `LinuxNetworkHost`) through `NetnsExec`, so this measures what the agents build.
 *
 * For experiments only (never set by `npm run bench`): OVERLAY_HOOK runs a shell command in
 * each machine's namespace after setup, OVERLAY_VM_HOOK in each VM stand-in's; OVERLAY_S and
 * OVERLAY_RUNS change the run length and count.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SystemExec } from '../src/agent/host/exec.ts';
import { LinuxMeshHost } from '../src/agent/host/linux-mesh.ts';
import { gatewayDevices } from '../src/core/gateway-ns.ts';
import { LinuxNetworkHost } from '../src/agent/host/linux-network.ts';
import { NetnsExec } from '../src/agent/host/netns-exec.ts';
import { loadOrCreateKey } from '../src/agent/wireguard-key.ts';
import { guestMtu, wireguardMtu } from '../src/core/mtu.ts';
import { stopWireguardGo } from '../test/host/wireguard-go.ts';
import { registerCleanup } from './cleanup.ts';

export interface OverlayResult {
  seconds: number;
  /** Receiver-side goodput, Mbit/s (median of `runs`). */
  plainMbps: number;
  overlayMbps: number;
  ratio: number;
  /** Per run; `*Retrans` are the sender's TCP retransmissions (drops on the way, mostly at the receiver's WireGuard socket). */
  runs: { plainMbps: number; overlayMbps: number; plainRetrans?: number; overlayRetrans?: number }[];
  mtu: { underlay: number; wireguard: number; guest: number };
}

function sh(args: string[], allowFail = false): string {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0 && !allowFail) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** iperf3 from `from` to `to`'s `addr`: receiver bits per second → Mbit/s, and the sender's retransmissions. */
function iperf(from: string, to: string, addr: string, seconds: number): { mbps: number; retrans: number } {
  sh(['ip', 'netns', 'exec', to, 'iperf3', '-s', '-1', '-D', '-B', addr]);
  for (let i = 0; i < 50 && !sh(['ip', 'netns', 'exec', to, 'ss', '-ltn'], true).includes(`${addr}:5201`); i++) spawnSync('sleep', ['0.1']);
  const out = JSON.parse(sh(['ip', 'netns', 'exec', from, 'iperf3', '-c', addr, '-t', String(seconds), '-J'])) as { end: { sum_received: { bits_per_second: number }; sum_sent: { retransmits: number } } };
  return { mbps: Math.round(out.end.sum_received.bits_per_second / 1e5) / 10, retrans: out.end.sum_sent.retransmits };
}

export async function benchOverlay(o = { seconds: Number(process.env.OVERLAY_S ?? 8), runs: Number(process.env.OVERLAY_RUNS ?? 3) }, log: (m: string) => void = () => {}): Promise<OverlayResult> {
  const id = randomBytes(2).toString('hex');
  const ns = { a: `bo-a-${id}`, b: `bo-b-${id}`, va: `bo-va-${id}`, vb: `bo-vb-${id}` };
  const dir = mkdtempSync(join(tmpdir(), 'butter-bench-overlay-'));
  const wg = { a: `bwo${id}a`, b: `bwo${id}b` };
  const hosts: { mesh?: LinuxMeshHost; net?: LinuxNetworkHost }[] = [];
  const cleanup = async () => {
    for (const h of hosts) {
      await h.net?.teardown().catch(() => {});
      await h.mesh?.teardown().catch(() => {});
    }
    await stopWireguardGo([{ ns: ns.a, iface: wg.a }, { ns: ns.b, iface: wg.b }]);
    for (const n of Object.values(ns)) sh(['ip', 'netns', 'del', n], true);
    rmSync(dir, { recursive: true, force: true });
  };
  const undo = registerCleanup(`overlay namespaces ${id}`, cleanup);
  const t0 = Date.now();
  try {
    for (const n of Object.values(ns)) {
      sh(['ip', 'netns', 'add', n]);
      sh(['ip', '-n', n, 'link', 'set', 'lo', 'up']);
    }
    // The underlay: one veth between the two machines, 1500 bytes.
    sh(['ip', 'link', 'add', `bo${id}u0`, 'netns', ns.a, 'type', 'veth', 'peer', 'name', `bo${id}u1`, 'netns', ns.b]);
    const under = { a: '10.252.0.1', b: '10.252.0.2' };
    for (const side of ['a', 'b'] as const) {
      const dev = side === 'a' ? `bo${id}u0` : `bo${id}u1`;
      sh(['ip', '-n', ns[side], 'addr', 'add', `${under[side]}/24`, 'dev', dev]);
      sh(['ip', '-n', ns[side], 'link', 'set', dev, 'up']);
    }
    const mtu = { underlay: 1500, wireguard: wireguardMtu(1500), guest: guestMtu(1500) };
    const meshIp = { a: '100.127.0.2', b: '100.127.0.3' };
    const keys = { a: loadOrCreateKey(join(dir, 'a')), b: loadOrCreateKey(join(dir, 'b')) };
    const vmMac = { a: '52:54:00:00:0b:01', b: '52:54:00:00:0b:02' };
    const vmIp = { a: '10.9.0.2', b: '10.9.0.3' };
    for (const side of ['a', 'b'] as const) {
      const other = side === 'a' ? 'b' : 'a';
      const exec = new NetnsExec(new SystemExec(), ns[side]);
      const mesh = new LinuxMeshHost({ exec, stateDir: join(dir, side), key: keys[side], iface: wg[side], listenPort: 51820 });
      // meshInterface: VXLAN is accepted only from the mesh (core/nft-rules.ts), as on a real node.
      const net = new LinuxNetworkHost({ exec, stateDir: join(dir, side, 'dnsmasq'), prefix: 'bt', netnsPrefix: `bt-ovl-${id}-${side}-`, meshInterface: wg[side] });
      hosts.push({ mesh, net });
      await mesh.apply({ address: meshIp[side], prefix: 16, mtu: mtu.wireguard, peers: [{ node: other, publicKey: keys[other].publicKey, endpoint: `${under[other]}:51820`, address: meshIp[other] }] });
      // The VM stand-in: a veth whose far end sits in its own namespace, like a guest's eth0.
      const port = `btvm${id}${side}`;
      sh(['ip', 'link', 'add', port, 'netns', ns[side], 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns[side === 'a' ? 'va' : 'vb'], 'address', vmMac[side]]);
      const vmNs = ns[side === 'a' ? 'va' : 'vb'];
      sh(['ip', '-n', vmNs, 'addr', 'add', `${vmIp[side]}/24`, 'dev', 'eth0']);
      sh(['ip', '-n', vmNs, 'link', 'set', 'eth0', 'mtu', String(mtu.guest), 'up']);
      await net.apply([
        {
          name: 'bench',
          bridge: 'bt-bench',
          cidr: '10.9.0.0/24',
          gateway: '10.9.0.1',
          mtu: mtu.guest,
          nat: false,
          dnsForward: false,
          ports: [{ tap: port, mac: vmMac[side], ip: vmIp[side], hostname: `vm-${side}` }],
          overlay: { device: 'btxbench', vni: 100, local: meshIp[side], remotes: [{ address: meshIp[other], macs: [vmMac[other]] }] },
          ...gatewayDevices('bench', 100),
        },
      ]);
    }
    // An experiment hook (not part of the figure): a shell command run in each machine's namespace.
    if (process.env.OVERLAY_HOOK) for (const side of ['a', 'b'] as const) log(sh(['ip', 'netns', 'exec', ns[side], 'sh', '-c', process.env.OVERLAY_HOOK]));
    if (process.env.OVERLAY_VM_HOOK) for (const v of [ns.va, ns.vb]) sh(['ip', 'netns', 'exec', v, 'sh', '-c', process.env.OVERLAY_VM_HOOK]);
    // Both paths must work before they are timed.
    sh(['ip', 'netns', 'exec', ns.a, 'ping', '-c', '3', '-W', '2', meshIp.b]);
    sh(['ip', 'netns', 'exec', ns.va, 'ping', '-c', '3', '-W', '2', '-M', 'do', '-s', String(mtu.guest - 28), vmIp.b]);
    const runs: OverlayResult['runs'] = [];
    for (let i = 0; i < o.runs; i++) {
      // Alternated, so slow drift of the machine hits both alike.
      const plain = iperf(ns.a, ns.b, meshIp.b, o.seconds);
      const overlay = iperf(ns.va, ns.vb, vmIp.b, o.seconds);
      runs.push({ plainMbps: plain.mbps, overlayMbps: overlay.mbps, plainRetrans: plain.retrans, overlayRetrans: overlay.retrans });
      log(`run ${i + 1}: plain WireGuard ${plain.mbps} Mbit/s (${plain.retrans} retransmissions), full overlay ${overlay.mbps} Mbit/s (${overlay.retrans})`);
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    const plainMbps = median(runs.map((r) => r.plainMbps));
    const overlayMbps = median(runs.map((r) => r.overlayMbps));
    return { seconds: Math.round((Date.now() - t0) / 100) / 10, plainMbps, overlayMbps, ratio: Math.round((overlayMbps / plainMbps) * 1000) / 1000, runs, mtu };
  } finally {
    await cleanup();
    undo();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchOverlay(undefined, (m) => console.log(m)), null, 2));
}
