/**
 * Prometheus' own parser of the exposition format, `promtool check metrics`: the maintained
 * judge of what `/metrics` answers (on the control plane and on each agent). Taken from
 * Debian's `prometheus` package without installing it (installing would start a Prometheus
 * daemon): `apt-get download` into a cache dir, `dpkg-deb -x`, as metadata-hop-limit does for
 * cloud-init. Idempotent: an unpacked promtool is used again.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';

const CACHE = join(process.env.BUTTER_TEST_CACHE ?? join(tmpdir(), 'butter-test-cache'), 'prometheus');

/** The path of promtool, unpacking it if needed; or why it cannot be had (for `requires`). */
export function promtool(): { path: string } | { missing: string } {
  const path = join(CACHE, 'root/usr/bin/promtool');
  if (existsSync(path)) return { path };
  try {
    mkdirSync(CACHE, { recursive: true });
    if (!readdirSync(CACHE).some((f) => /^prometheus_.*\.deb$/.test(f))) execFileSync('apt-get', ['download', 'prometheus'], { cwd: CACHE, stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
    const deb = readdirSync(CACHE).find((f) => /^prometheus_.*\.deb$/.test(f));
    if (!deb) return { missing: 'apt-get download prometheus gave no package' };
    execFileSync('dpkg-deb', ['-x', join(CACHE, deb), join(CACHE, 'root')]);
  } catch (e) {
    return { missing: `cannot fetch promtool (apt-get download prometheus; dpkg-deb -x): ${(e as Error).message.split('\n')[0]}` };
  }
  return existsSync(path) ? { path } : { missing: `the prometheus package has no ${path.slice(CACHE.length)}` };
}

/**
 * Asserts promtool accepts `text` as the exposition format, lint included (names, units,
 * `_total` only on counters, help texts): `promtool check metrics` exits 0 with no complaint.
 */
export function assertPromtoolAccepts(tool: string, text: string, what: string): void {
  const r = spawnSync(tool, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.error, undefined, `promtool did not run: ${r.error}`);
  assert.equal(`${r.stdout}${r.stderr}`.trim(), '', `promtool check metrics complains about ${what}`);
  assert.equal(r.status, 0, `promtool check metrics refuses ${what}`);
}
