/**
 * VM-to-VM TCP through real guests: the tiny image under QEMU (TCG here), on a Butter cluster
 * of two namespace machines (control plane, agents, WireGuard mesh, VXLAN: the host tests'
 * harness). A receiver VM on n1 discards what arrives on port 5001; a sender streams zeros to
 * it with busybox `dd | nc`, first from n2 (across the overlay), then from a VM beside it on
 * n1 (the bridge only). The rate is what the receiver's tap carried over the middle of each
 * stream, read from the kernel's counters in n1. Under TCG the guests' own CPU is the limit,
 * so this is reported, not judged.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { guestMtu } from '../src/core/mtu.ts';
import { tapName } from '../src/core/vm-spec.ts';
import { NamespaceCluster } from '../test/host/cluster-harness.ts';
import { registerCleanup } from './cleanup.ts';

export interface GuestOverlayResult {
  /** n2 → n1 through bridge, VXLAN and WireGuard. */
  crossNodeMbps: number;
  /** n1 → n1 through the bridge only. */
  sameNodeMbps: number;
  /** Length of each measured window. */
  seconds: number;
  guestMtu: number;
}

export const GUEST_OVERLAY_DEFAULTS = { seconds: 10 };

const PORT = 5001;

export async function benchGuestOverlay(opts = GUEST_OVERLAY_DEFAULTS, log: (m: string) => void = () => {}): Promise<GuestOverlayResult> {
  const c = new NamespaceCluster();
  const undo = registerCleanup('guest overlay cluster', () => c.cleanup());
  try {
    await c.startServer();
    await c.addNode('n1', 'east');
    await c.addNode('n2', 'east');
    const { buildTiny } = await import('../src/daemon/tiny-image.ts');
    const t = await buildTiny(join(c.dir, 'tiny'));
    must(c.cli(['image', 'add', 'tiny', '--kernel', t.kernel, '--initrd', t.initrd, '--root-disk', t.rootDisk, '--cmdline', t.cmdline]));
    must(c.cli(['network', 'create', 'perf', '--cidr', '10.44.0.0/24']));
    const create = (name: string, node: string, ...more: string[]) =>
      must(c.cli(['vm', 'create', name, '--image', 'tiny', '--memory', '192M', '--disk', '256M', '--network', 'perf', '--node', node, ...more]));
    create('sink', 'n1');
    create('far', 'n2');
    create('near', 'n1');
    await c.until('the three VMs running', () => c.json<{ state: string }[]>(['vm', 'list']).every((v) => v.state === 'running'), 240_000);
    const sink = c.json<{ id: string; ip: string }>(['vm', 'show', 'sink']);
    const tap = tapName(sink.id);
    // The guests' console shells come up after their boot: give them a moment. The receiver
    // discards, one connection after another.
    await sleep(5000);
    type(c, 'sink', `(while true; do nc -l -p ${PORT} >/dev/null; echo sink-done; done) &\n`);
    await sleep(2000);

    const txBytes = (): number => {
      const r = c.inNode('n1', 'ip', ['-s', '-j', 'link', 'show', 'dev', tap]);
      return (JSON.parse(r.stdout) as { stats64: { tx: { bytes: number } } }[])[0]!.stats64.tx.bytes;
    };
    const stream = async (sender: string): Promise<number> => {
      const total = opts.seconds + 8;
      type(c, sender, `timeout ${total} sh -c 'dd if=/dev/zero bs=65536 2>/dev/null | nc ${sink.ip} ${PORT}; echo nc-exit-$?' &\n`);
      await sleep(4000); // connected and past slow start
      const b0 = txBytes();
      const t0 = performance.now();
      await sleep(opts.seconds * 1000);
      const bytes = txBytes() - b0;
      const s = (performance.now() - t0) / 1000;
      await sleep((total - opts.seconds - 4 + 2) * 1000); // let it end before the next
      const mbps = Math.round(((bytes * 8) / s / 1e6) * 10) / 10;
      log(`${sender} → sink: ${mbps} Mbit/s (${bytes} bytes in ${s.toFixed(1)} s)`);
      if (bytes < 1e6) {
        const tail = (vm: string) => c.cli(['vm', 'logs', vm]).stdout.slice(-1200);
        throw new Error(`${sender} sent almost nothing to sink (${bytes} bytes): the stream did not start\n--- ${sender}:\n${tail(sender)}\n--- sink:\n${tail('sink')}`);
      }
      return mbps;
    };
    const crossNodeMbps = await stream('far');
    const sameNodeMbps = await stream('near');
    return { crossNodeMbps, sameNodeMbps, seconds: opts.seconds, guestMtu: guestMtu(1500) };
  } finally {
    await c.cleanup();
    undo();
  }
}

/** Types a command line into a VM's serial console (`butter vm console`, as a user would). */
function type(c: NamespaceCluster, vm: string, line: string): void {
  const r = c.cli(['vm', 'console', vm], line);
  if (r.code !== 0) throw new Error(`vm console ${vm}: ${r.stderr}`);
}

function must(r: { code: number; stderr: string }): void {
  if (r.code !== 0) throw new Error(r.stderr);
}
