/**
 * `butter server` as its own process (the compiled CLI in dist/, as users run it), on a free
 * loopback port with a temp data dir. Figures (b) and (d) share one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '../src/sdk/node-client.ts';
import { registerCleanup } from './cleanup.ts';
import { sleep, within } from './stats.ts';

export const BUTTER = fileURLToPath(new URL('../bin/butter', import.meta.url));

export interface ServerProcess {
  pid: number;
  url: string;
  /** What the server speaks: HTTPS with its own CA (its default once it has one) or plain HTTP. */
  transport: 'https' | 'http';
  dataDir: string;
  admin: Client;
  /** A client with `token`, trusting the server's CA when it has one. */
  client(token: string): Client;
  /** stdout+stderr so far (the server logs little: startup and errors). */
  log(): string;
  stop(): Promise<void>;
}

/** Client options for a control plane; `ca` (PEM) only when it speaks HTTPS. */
export function clientOptions(url: string, token: string, ca: string | undefined): { url: string; token: string; ca?: string } {
  return { url, token, ...(ca ? { ca } : {}) };
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
    // It says where it listens, and whether over HTTPS, once it does.
    const deadline = Date.now() + 30_000;
    let m: RegExpExecArray | null;
    while (!(m = /control plane listening on (https?):\/\//.exec(out))) {
      if (child.exitCode !== null) throw new Error(`butter server exited ${child.exitCode}: ${out.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`butter server did not say it listens within 30 s: ${out.slice(-2000)}`);
      await sleep(100);
    }
    const transport = m[1] as 'https' | 'http';
    const url = `${transport}://127.0.0.1:${port}`;
    const ca = transport === 'https' ? readFileSync(join(dataDir, 'tls', 'ca.crt'), 'utf8') : undefined;
    const client = (token: string) => new Client(clientOptions(url, token, ca));
    const admin = client(readFileSync(join(dataDir, 'admin.token'), 'utf8').trim());
    await admin.call('health', {});
    return {
      pid: child.pid!,
      url,
      transport,
      dataDir,
      admin,
      client,
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

/**
 * Starts its own `butter server`, runs a figure (`fn`) against it, and stops it, even when the
 * figure throws. With BENCH_SERVER_LOG set (a debugging aid), the server's own output is kept
 * in that file.
 */
export async function withServerProcess<T>(log: (m: string) => void, fn: (server: ServerProcess) => Promise<T>): Promise<T> {
  const server = await startServerProcess();
  log(`butter server pid ${server.pid} at ${server.url}`);
  try {
    return await fn(server);
  } finally {
    if (process.env.BENCH_SERVER_LOG) writeFileSync(process.env.BENCH_SERVER_LOG, server.log());
    await server.stop();
  }
}
