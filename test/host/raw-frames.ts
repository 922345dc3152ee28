/**
 * Hand-made packets from inside a namespace, and what of them arrives where (raw-frames.py:
 * Node has no packet sockets). Each probe is tagged; a listener reports the tags it saw.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./raw-frames.py', import.meta.url));

export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';

/** One Ethernet frame; `fragment`: a later IPv4 fragment of UDP (no transport header to read). */
export interface Probe {
  tag: string;
  dstMac: string;
  src: string;
  dst: string;
  proto: 'icmp' | 'udp' | 'tcp' | 'arp';
  sport?: number;
  dport?: number;
  fragment?: boolean;
}

/** Runs raw-frames.py in `ns` and waits for it. */
export function rawFrames(ns: string, args: string[]): void {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'python3', SCRIPT, ...args], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`raw-frames.py ${args.join(' ')} in ${ns}: ${r.stderr}`);
}

/**
 * Starts a listener in `ns` (`['sniff' or 'sniff-out', IFACE]` or `['listen', 'PORT,PORT']`), runs `send`
 * once it listens, and returns the tags it saw until the tag `stop` (or `seconds`).
 */
export async function tagsArriving(ns: string, listener: string[], stop: string, send: () => void | Promise<void>, seconds = 20): Promise<string[]> {
  const child = spawn('ip', ['netns', 'exec', ns, 'python3', SCRIPT, ...listener, stop, String(seconds)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await Promise.race([
      new Promise<void>((resolve) => child.stdout.on('data', () => out.startsWith('READY\n') && resolve())),
      exited.then(() => {
        throw new Error(`listener in ${ns} ended before it listened: ${err}`);
      }),
    ]);
    await send();
    const code = await exited;
    if (code !== 0) throw new Error(`listener in ${ns} failed: ${err}`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  return JSON.parse(out.trim().split('\n').at(-1)!) as string[];
}
