/**
 * Opens the SQLite store. Durability policy: WAL with `synchronous = FULL`, so every commit
 * is fsynced before the API acknowledges the write that made it.
 */
import Database from 'better-sqlite3';
import { MIGRATIONS } from './migrations.ts';

export type Db = Database.Database;

/** The page cache's bound, in KiB (see openDb). */
export const PAGE_CACHE_KIB = 2048;

export function openDb(file: string): Db {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  // SQLite's page cache, per connection. better-sqlite3 builds SQLite with 16 MB; the store's
  // hot pages (nodes, the VMs a heartbeat reads through their index, the newest events) fit in
  // far less, and a page outside it comes from the kernel's page cache in microseconds. With
  // 10,000 VMs (and an Idempotency-Key row per create, inserted at random places in its index)
  // the 16 MB filled: with 20 simulated nodes and 10,000 VMs the control plane's RSS was
  // 118.2 MiB with 16 MB, 106.2 MiB with 4 MB. In bench (f) (1,000 agents, 10,000 VMs) the
  // RSS was 193.8 MiB with 4 MB and 188.1 MiB with 2 MB, its creates 61.4 s and 48.3 s
  // (2026-12-01, one run each): the pages the kernel holds anyway cost nothing to re-read.
  db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
  migrate(db);
  cacheStatements(db);
  return db;
}

export function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

/**
 * Compiling a statement costs more than running most of ours; the SQL texts are a fixed set,
 * so each is prepared once and reused.
 */
function cacheStatements(db: Db): void {
  const prepare = db.prepare.bind(db);
  const cache = new Map<string, Database.Statement>();
  db.prepare = ((sql: string) => {
    let st = cache.get(sql);
    if (!st) {
      st = prepare(sql);
      cache.set(sql, st);
    }
    return st;
  }) as Db['prepare'];
}
