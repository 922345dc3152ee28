// scripts/start.sh (what `scripts/install.sh --start` runs), for real, on its path for
// machines where systemd is not PID 1 (forced with BUTTER_NO_SYSTEMD where it is): it starts `butter up` in the background inside a fresh network namespace and
// returns only once /readyz says ready, so the README's next command works at once; run again,
// it finds Butter running and only waits. A tiny image that cannot be built is a failure that
// names the check, not "Butter is up".
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ButterInNetns } from './butter-cli.ts';
import { requires } from '../requires.ts';

const START = fileURLToPath(new URL('../../scripts/start.sh', import.meta.url));
const skip = requires(process.getuid?.() === 0, 'needs root (network namespaces, QEMU, nftables)');
const made: ButterInNetns[] = [];

after(async () => {
  for (const b of made) {
    // start.sh's butter up runs in the background: it is not the harness's child.
    for (const pid of upPids(b)) process.kill(pid, 'SIGKILL');
    await b.cleanup();
  }
});

/** The `butter up` processes of this harness's data dir (its path is unique). */
function upPids(b: ButterInNetns): number[] {
  const out = spawnSync('pgrep', ['-f', `up --data-dir ${b.dataDir}`], { encoding: 'utf8' }).stdout;
  return out.split('\n').filter(Boolean).map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(b.dataDir);
    } catch {
      return false;
    }
  });
}

/** start.sh in the namespace (nsenter: gateway namespaces must be visible host-wide), with its state in the harness's dir. */
function start(b: ButterInNetns, env: Record<string, string> = {}) {
  const r = spawnSync('nsenter', [`--net=/run/netns/${b.ns}`, 'bash', START], {
    encoding: 'utf8',
    timeout: 900_000,
    env: { ...process.env, XDG_CONFIG_HOME: join(b.dir, 'config'), BUTTER_DATA_DIR: b.dataDir, BUTTER_LOG: join(b.dir, 'butter.log'), BUTTER_UP_ARGS: `--no-egress --wg-interface ${b.wg}`,
      // Where systemd is PID 1 start.sh would start the machine's real butter-up unit instead.
      BUTTER_NO_SYSTEMD: '1', BUTTER_URL: '', BUTTER_TOKEN: '', ...env },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('start.sh returns once Butter is ready: the tiny image is there at once; a second run only waits', { skip }, () => {
  const b = new ButterInNetns();
  made.push(b);
  const first = start(b);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /systemd is not PID 1 here \(or BUTTER_NO_SYSTEMD is set\): starting butter up in the background/);
  assert.match(first.stdout, /Butter is up at https:\/\/127\.0\.0\.1:7700/);
  const images = JSON.parse(b.ok(['image', 'list', '--json'])) as { name: string; status: string }[];
  assert.deepEqual(images.map((i) => [i.name, i.status]), [['tiny', 'ready']]);
  assert.equal(b.probe('/readyz').status, 200);

  const again = start(b);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /already running/);
  assert.equal(upPids(b).length, 1, 'one butter up, not two');
});

test('start.sh fails, naming the check, when the tiny image cannot be built', { skip }, () => {
  const b = new ButterInNetns();
  made.push(b);
  // build.sh takes the kernel version from TINY_KVER; this one is not installed.
  const r = start(b, { TINY_KVER: '0.0.0-none' });
  assert.notEqual(r.code, 0, r.stdout);
  assert.match(r.stderr, /Butter started but is not ready:\n {2}image tiny: failed \(build failed; see the log of butter up\)/);
  assert.doesNotMatch(r.stdout, /Butter is up/);
});
