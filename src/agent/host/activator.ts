/**
 * The activator (issue 16, scale to zero): while a VM sleeps for idleness, the agent holds its
 * taps so that what is sent to it is not lost, answers ARP for it, and wakes it on a new
 * connection (the decisions are core/scale-to-zero/frames.ts).
 *
 * Per tap, one socat attaches to the persistent tap (`TUN,tun-type=tap,tun-name=…`: the tap
 * the VM's QEMU had, made by linux-net/bridge.ts) and relays each frame as one UDP datagram to
 * a socket of the agent's on loopback, and each datagram the agent sends back into the tap as
 * if the guest had sent it (the bridge's anti-spoofing admits only the VM's own MAC and
 * address from it, which is all the ARP replies carry). Node cannot open a tap itself (no
 * ioctl). socat runs under start-stop-daemon (through Exec, like every command) with a
 * pidfile in `dir`, so a restarted agent finds and ends the one it left before holding the
 * tap again. Only one process may hold a tap that is not multi-queue: the VM's QEMU can
 * open it again only once socat is gone, so a wake ends socat first.
 *
 * The frames that woke the VM are kept and sent again once it runs (`reinject`): written
 * onto the network's bridge with AF_PACKET (`socat -u OPEN:FILE INTERFACE:BRIDGE`), which
 * forwards them out the VM's port, so the client's SYN is answered without waiting for its
 * retransmit (1 s, then 2 s, …).
 */
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { judgeFrame, withChecksums, type ActivatedNic } from '../../core/scale-to-zero/frames.ts';
import type { Exec } from './exec.ts';

export interface HeldNic extends ActivatedNic {
  tap: string;
  bridge: string;
}

export interface WakeCall {
  trigger: 'tcp' | 'udp';
  port: number;
  from: string;
  /** When the frame arrived (performance.now()). */
  at: number;
}

/** At most this many frames are kept for re-sending per VM: a SYN and its retransmits, a few datagrams. */
const MAX_HELD = 16;

interface Holding {
  nics: HeldNic[];
  sockets: Socket[];
  held: { bridge: string; frame: Buffer }[];
  woken: boolean;
}

/** A loopback UDP port free at this moment (bound and let go): socat's source port. */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

export class Activators {
  private readonly holding = new Map<string, Holding>();
  private readonly socat: string;

  constructor(private readonly o: { exec: Exec; dir: string; log?: (m: string) => void; socat?: string; startStopDaemon?: string }) {
    this.socat = o.socat ?? '/usr/bin/socat';
    mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  }

  isHolding(id: string): boolean {
    return this.holding.has(id);
  }

  held(): string[] {
    return [...this.holding.keys()];
  }

  /** Holds the VM's taps until `release`; `onWake` is called once, for the first frame that should wake it. */
  async hold(id: string, nics: readonly HeldNic[], onWake: (w: WakeCall) => void): Promise<void> {
    if (this.holding.has(id)) return;
    const h: Holding = { nics: [...nics], sockets: [], held: [], woken: false };
    this.holding.set(id, h);
    try {
      for (const nic of nics) {
        // Whatever a crashed agent left on this tap goes first: one holder only.
        await this.stopSocat(nic.tap);
        // socat's own source port, chosen here: only datagrams from it are frames of the tap.
        // Any local process may send to a loopback port; one that is not root cannot send from
        // a port socat holds, so it can neither wake the VM nor have frames re-sent onto the bridge.
        const from = await freeLoopbackPort();
        const sock = createSocket('udp4');
        sock.on('error', (e) => this.o.log?.(`activator ${nic.tap}: ${e.message}`));
        sock.on('message', (frame, sender) => {
          if (sender.address !== '127.0.0.1' || sender.port !== from) return;
          const v = judgeFrame(frame, nic);
          if (v.kind === 'arp-reply') sock.send(v.frame, sender.port, sender.address);
          else if (v.kind === 'wake') {
            if (h.held.length < MAX_HELD) h.held.push({ bridge: nic.bridge, frame: Buffer.from(frame) });
            if (!h.woken) {
              h.woken = true;
              onWake({ trigger: v.trigger, port: v.port, from: v.from, at: performance.now() });
            }
          }
        });
        await new Promise<void>((resolve, reject) => {
          sock.once('error', reject);
          sock.bind(0, '127.0.0.1', () => resolve());
        });
        h.sockets.push(sock);
        const port = sock.address().port;
        await this.o.exec.run(this.o.startStopDaemon ?? 'start-stop-daemon', [
          '--start', '--background', '--make-pidfile', '--pidfile', this.pidfile(nic.tap), '--exec', this.socat, '--',
          '-lf', join(this.o.dir, `${nic.tap}.log`),
          `TUN,tun-type=tap,tun-name=${nic.tap},iff-no-pi,iff-up`, `UDP:127.0.0.1:${port},bind=127.0.0.1:${from}`,
        ]);
      }
    } catch (e) {
      await this.release(id);
      throw e;
    }
  }

  /** Lets go of the VM's taps (its QEMU may open them now); returns the frames kept for re-sending. */
  async release(id: string): Promise<{ bridge: string; frame: Buffer }[]> {
    const h = this.holding.get(id);
    if (!h) return [];
    this.holding.delete(id);
    for (const nic of h.nics) await this.stopSocat(nic.tap);
    for (const s of h.sockets) s.close();
    return h.held;
  }

  /**
   * Wakes a held VM: lets go of its taps, runs `resume` (its QEMU opens them again), then sends
   * it the frames kept meanwhile. The agent's wake, and bench (s)'s.
   */
  async wake(id: string, resume: () => Promise<void>): Promise<{ releaseMs: number; resumeMs: number; reinjectMs: number; frames: number }> {
    const t0 = performance.now();
    const frames = await this.release(id);
    const t1 = performance.now();
    await resume();
    const t2 = performance.now();
    await this.reinject(frames);
    const ms = (a: number, b: number) => Math.round(b - a);
    return { releaseMs: ms(t0, t1), resumeMs: ms(t1, t2), reinjectMs: ms(t2, performance.now()), frames: frames.length };
  }

  /** Sends kept frames out their bridge toward the VM (now running again); best effort. */
  async reinject(frames: readonly { bridge: string; frame: Buffer }[]): Promise<void> {
    for (const [i, f] of frames.entries()) {
      const file = join(this.o.dir, `frame-${process.pid}-${i}.bin`);
      // Checksums made whole: a frame read from the tap may carry an offloaded, partial one (frames.ts).
      writeFileSync(file, withChecksums(f.frame), { mode: 0o600 });
      try {
        await this.o.exec.run(this.socat, ['-u', `OPEN:${file}`, `INTERFACE:${f.bridge}`], { allowFail: true, timeoutMs: 5000 });
      } finally {
        rmSync(file, { force: true });
      }
    }
  }

  /** Ends every socat a pidfile names but no VM held here needs (one left by an earlier agent); at the agent's start and stop. */
  async sweep(): Promise<void> {
    const mine = new Set([...this.holding.values()].flatMap((h) => h.nics.map((n) => n.tap)));
    for (const f of readdirSync(this.o.dir)) {
      const m = /^(.+)\.pid$/.exec(f);
      if (m && !mine.has(m[1]!)) await this.stopSocat(m[1]!);
    }
  }

  /** Ends everything held (the agent's stop): the taps are let go; a restarted agent holds them again. */
  async releaseAll(): Promise<void> {
    for (const id of [...this.holding.keys()]) await this.release(id);
  }

  private pidfile(tap: string): string {
    return join(this.o.dir, `${tap}.pid`);
  }

  private async stopSocat(tap: string): Promise<void> {
    // --exec: only a socat is ever signalled, never a process that took over a stale pid.
    await this.o.exec.run(this.o.startStopDaemon ?? 'start-stop-daemon', ['--stop', '--quiet', '--oknodo', '--pidfile', this.pidfile(tap), '--exec', this.socat, '--retry', 'TERM/2/KILL/2', '--remove-pidfile'], { allowFail: true });
    rmSync(this.pidfile(tap), { force: true });
  }
}
