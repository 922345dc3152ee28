/**
 * The daemons keep users' disks, console output, tokens and keys: nothing they make may be
 * readable by another user of the host. Two walls: each module creates its files and dirs with
 * explicit modes (0600/0700, chmod'ed too, since mkdir's mode is filtered by the umask and an
 * existing dir keeps its old one), and the process umask is 077, so what others create for us
 * (QEMU's console log and sockets, qemu-img's overlays, SQLite's -wal/-shm) is private from its
 * first byte. Exception: dnsmasq runs as an unprivileged user and rereads its hosts files, so
 * the agent makes those (under /run/butter/agent-*, outside the state dir) readable on purpose
 * (agent/host/dnsmasq-process.ts, daemon/agent-runtime.ts).
 */
import { chmodSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Set first thing in `up`, `server`, `agent` and `sim`: children (QEMU, qemu-img, dnsmasq) inherit it. */
export function privateUmask(): void {
  process.umask(0o077);
}

/**
 * Takes group and other access off everything under `dir` (a data dir an older version, or
 * another umask, left loose): dirs 0700, files keep only their owner's bits. Symlinks are
 * left alone (chmod would follow them out of the tree).
 */
export function tightenTree(dir: string): void {
  const walk = (p: string) => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return; // gone meanwhile
    }
    if (st.isSymbolicLink()) return;
    const mode = st.mode & 0o7777;
    const want = st.isDirectory() ? 0o700 : mode & 0o700;
    if (mode !== want) chmodSync(p, want);
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
  };
  walk(dir);
}
