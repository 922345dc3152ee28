/**
 * (s) Wake from zero (issue 16, scale to zero): `butter up` in a namespace, a tiny VM with
 * `--idle-stop 5s` running busybox httpd. Each cycle waits until its agent has suspended it
 * for idleness, then a client on the host (in the namespace; the host reaches the network's
 * VMs through the uplink) opens a TCP connection to it and sends a GET: the figure is from the
 * connect() call (the SYN the activator holds) to the first byte of the answer, measured by the
 * client. The agent's own `wake` event (frame arrived → guest running again) is kept beside it.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ButterInNetns } from '../test/host/butter-cli.ts';
import { cleanupButter } from './boot.ts';
import { cliAsync } from './boot-butter.ts';
import { registerCleanup } from './cleanup.ts';
import { percentile, round, sleep } from './stats.ts';

const execFileP = promisify(execFile);

export interface WakeFromZeroResult {
  cycles: number;
  /** connect() → first byte answered, per cycle (client clock). */
  firstByteMs: number[];
  p50Ms: number;
  p99Ms: number;
  /** The agent's figure per wake: the frame that woke it → the guest running again. */
  agentWakeMs: number[];
  idleStop: string;
}

const CLIENT = `
import socket, sys, time
t0 = time.monotonic()
s = socket.create_connection((sys.argv[1], 80), timeout=30)
s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
first = s.recv(1)
t1 = time.monotonic()
rest = b""
while True:
    x = s.recv(4096)
    if not x: break
    rest += x
print(round((t1 - t0) * 1000, 1), (first + rest).decode().split("\\r\\n\\r\\n", 1)[-1].strip())
`;

export async function benchWakeFromZero(cycles = 5, log: (m: string) => void = () => {}): Promise<WakeFromZeroResult> {
  const b = new ButterInNetns();
  const undo = registerCleanup(`butter up in ${b.ns} (wake from zero)`, () => cleanupButter(b));
  const idleStop = '5s';
  try {
    await b.start(300_000);
    const userData = join(b.dir, 'web.sh');
    writeFileSync(userData, '#!/bin/sh\nmkdir -p /www && echo zero > /www/index.html\nhttpd -p 80 -h /www\n');
    await cliAsync(b, ['vm', 'create', 'zero', '--image', 'tiny', '--memory', '256M', '--disk', '1G', '--idle-stop', idleStop, '--user-data', userData, '--wait']);
    const show = async () => JSON.parse(await cliAsync(b, ['vm', 'show', 'zero', '--json'])) as { state: string; power: string; ip: string };
    const ip = (await show()).ip;
    const firstByteMs: number[] = [];
    for (let i = 0; i < cycles; i++) {
      const end = Date.now() + 120_000;
      for (;;) {
        const v = await show();
        if (v.state === 'suspended' && v.power === 'running') break;
        if (Date.now() > end) throw new Error(`the VM was not suspended for idleness within 120 s (state ${v.state})`);
        await sleep(250);
      }
      const r = await execFileP('ip', ['netns', 'exec', b.ns, 'python3', '-c', CLIENT, ip], { encoding: 'utf8', timeout: 60_000 });
      const [ms, body] = r.stdout.trim().split(' ');
      if (body !== 'zero') throw new Error(`the woken VM answered ${JSON.stringify(r.stdout.trim())}`);
      firstByteMs.push(Number(ms));
      log(`cycle ${i + 1}/${cycles}: connect → first byte ${ms} ms`);
    }
    const events = JSON.parse(await cliAsync(b, ['events', '--resource', 'vm', '--name', 'zero', '--limit', '1000', '--json'])) as { action: string; message: string }[];
    const agentWakeMs = events.filter((e) => e.action === 'wake').map((e) => Number(/running again (\d+) ms/.exec(e.message)?.[1]));
    const sorted = [...firstByteMs].sort((a, c) => a - c);
    return { cycles, firstByteMs, p50Ms: round(percentile(sorted, 50), 1), p99Ms: round(percentile(sorted, 99), 1), agentWakeMs, idleStop };
  } finally {
    await cleanupButter(b);
    undo();
  }
}
