/**
 * `butter server` as its own process (the compiled CLI in dist/, as users run it), on a free
 * loopback port with a temp data dir. Figures (b) and (d) share one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '../src/sdk/client.ts';
import { registerCleanup } from './cleanup.ts';
import { sleep, within } from './stats.ts';

export const BUTTER = fileURLToPath(new URL('../bin/butter', import.meta.url));

export interface ServerProcess {
  pid: number;
  url: string;
  dataDir: string;
  admin: Client;
  /** stdout+stderr so far (the server logs little: startup and errors). */
  log(): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', resolve);
  });
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timedOut = await within(exited.then(() => false), 5_000, true);
  if (timedOut) {
    child.kill('SIGKILL');
    await exited;
  }
}

export async function startServerProcess(): Promise<ServerProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), 'butter-bench-server-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // bin/butter is `exec node ...`: the child's pid is the control plane's own process.
  const child = spawn(BUTTER, ['server', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const stop = async () => {
    await stopChild(child);
    rmSync(dataDir, { recursive: true, force: true });
  };
  const done = registerCleanup(`butter server ${child.pid}`, stop);
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`butter server exited ${child.exitCode}: ${out.slice(-2000)}`);
      try {
        const r = await fetch(`${url}/healthz`);
        if (r.ok) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`butter server not answering on ${url} after 30 s: ${out.slice(-2000)}`);
      await sleep(100);
    }
    const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    return {
      pid: child.pid!,
      url,
      dataDir,
      admin: new Client({ url, token }),
      log: () => out,
      stop: async () => {
        await stop();
        done();
      },
    };
  } catch (e) {
    await stop();
    done();
    throw e;
  }
}
