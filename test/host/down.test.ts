// `butter down [--purge]` for real: a `butter up` in a network namespace with a VM on two
// networks (two bridges, taps, gateway namespaces, dnsmasqs), the mesh (wireguard-go), nft
// tables and policy rules; then `down` removes all of it and only it (a user's `bt0` stays),
// whether `up` still runs or crashed, and a second `down` finds nothing.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ButterInNetns } from './butter-cli.ts';
import { dnsmasqDirPath, netnsPrefixOf } from '../../src/daemon/agent-runtime.ts';

const made: ButterInNetns[] = [];
after(async () => {
  for (const b of made) {
    if (process.env.BUTTER_TEST_DEBUG) console.error(b.upLog);
    await b.cleanup();
  }
});

/** Everything of this Butter on the host that `down` must remove, as names (empty: nothing left). */
type Leftovers = Record<'qemu' | 'dnsmasq' | 'wireguardGo' | 'markedLinks' | 'meshLink' | 'wgSocket' | 'namespaces' | 'nftTables' | 'rules' | 'runState', string[]>;

function leftovers(b: ButterInNetns): Leftovers {
  const stateDir = join(b.dataDir, 'agent');
  const runDir = dnsmasqDirPath(stateDir);
  const procs = (re: RegExp) =>
    readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .map((pid) => {
        try {
          return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()}`;
        } catch {
          return '';
        }
      })
      .filter((l) => re.test(l));
  const links = JSON.parse(b.sh('ip', ['-j', 'link', 'show']).stdout) as { ifname: string; ifalias?: string }[];
  const rules = JSON.parse(b.sh('ip', ['-j', 'rule', 'show']).stdout) as { priority: number; table: string }[];
  const prefix = netnsPrefixOf(stateDir);
  return {
    qemu: procs(new RegExp(`qemu.*${b.dataDir}`)),
    dnsmasq: procs(new RegExp(`dnsmasq.*${runDir}`)),
    wireguardGo: procs(new RegExp(`^\\d+ wireguard-go ${b.wg}$`)),
    markedLinks: links.filter((l) => l.ifalias?.startsWith('butter')).map((l) => l.ifname),
    meshLink: links.filter((l) => l.ifname === b.wg).map((l) => l.ifname),
    wgSocket: existsSync(`/var/run/wireguard/${b.wg}.sock`) ? [b.wg] : [],
    namespaces: existsSync('/run/netns') ? readdirSync('/run/netns').filter((n) => n.startsWith(prefix) && n !== userNamespace(b)) : [],
    nftTables: b.sh('nft', ['list', 'tables']).stdout.split('\n').filter((l) => /butter/.test(l)),
    // A fresh namespace has the kernel's three (local, main, default) and nothing else.
    rules: rules.filter((r) => ![0, 32766, 32767].includes(r.priority) && Number(r.table) !== USER_TABLE).map((r) => `${r.priority} ${r.table}`),
    runState: existsSync(runDir) ? [runDir] : [],
  };
}

/** Named like ours but not made by Butter: `down` must leave them. */
const userNamespace = (b: ButterInNetns) => `${netnsPrefixOf(join(b.dataDir, 'agent'))}mine`;
const USER_TABLE = 0x20000fff;
const USER_RULE = ['priority', '1001', 'from', '192.0.2.7/32', 'lookup', String(USER_TABLE)];

function userThingsStay(b: ButterInNetns, rule = false): void {
  assert.equal(b.sh('ip', ['link', 'show', 'bt0']).code, 0, "the user's bt0 is left alone");
  assert.ok(existsSync(`/run/netns/${userNamespace(b)}`), 'a namespace named like ours but not marked is left alone');
  if (rule) assert.match(b.sh('ip', ['rule', 'show']).stdout, /from 192\.0\.2\.7 lookup 536875007/, "a rule at our priority but not naming anything of ours is left alone");
}

const NOTHING: Leftovers = { qemu: [], dnsmasq: [], wireguardGo: [], markedLinks: [], meshLink: [], wgSocket: [], namespaces: [], nftTables: [], rules: [], runState: [] };

/** A Butter with a VM on two networks, and a user's interface named like ours. */
async function butterWithVm(): Promise<ButterInNetns> {
  const b = new ButterInNetns();
  made.push(b);
  await b.start();
  assert.equal(b.sh('ip', ['link', 'add', 'bt0', 'type', 'bridge']).code, 0, "a user's bt0");
  assert.equal(spawnSync('ip', ['netns', 'add', userNamespace(b)]).status, 0);
  b.ok(['network', 'create', 'lab']);
  b.ok(['vm', 'create', 'demo', '--image', 'tiny', '--memory', '256M', '--network', 'default', '--network', 'lab', '--wait']);
  // The mesh comes up with the agent's first desired state: wait for it (bounded).
  for (let i = 0; i < 100 && leftovers(b).wireguardGo.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  const before = leftovers(b);
  // Each kind is there to begin with, so each emptiness below means `down` removed it.
  for (const [kind, names] of Object.entries(before)) assert.notDeepEqual(names, [], `${kind} exists before down`);
  assert.equal(before.dnsmasq.length, 2, 'one dnsmasq per network');
  assert.equal(before.namespaces.length, 2, 'one gateway namespace per network');
  // The paths' and published ports' tables are loaded on their own (issue 14): down must know them too.
  assert.deepEqual(before.nftTables.map((l) => l.trim()).sort(), ['table bridge butter', 'table inet butter', 'table inet butter_paths', 'table inet butter_publish']);
  return b;
}

function down(b: ButterInNetns, args: string[]): { removed: { kind: string; name: string }[] } {
  const t0 = Date.now();
  const r = b.host(['down', '--data-dir', b.dataDir, '--json', ...args]);
  if (process.env.BUTTER_TEST_DEBUG) console.error(`butter down ${args.join(' ')}: ${Date.now() - t0} ms\n${r.stderr}${r.stdout}`);
  assert.equal(r.code, 0, `butter down ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

test('butter down while butter up runs: stops it and its VM, removes everything it made and nothing else', async () => {
  const b = await butterWithVm();
  const out = down(b, []);
  assert.ok(await b.upExit(), 'butter up was stopped');
  assert.deepEqual(leftovers(b), NOTHING);
  const kinds = new Set(out.removed.map((r) => r.kind));
  for (const k of ['butter-up', 'vm', 'dnsmasq', 'namespace', 'link', 'mesh', 'nft-table', 'rule', 'run-dir']) assert.ok(kinds.has(k), `${k} in ${JSON.stringify(out.removed)}`);
  userThingsStay(b);
  assert.ok(existsSync(join(b.dataDir, 'butter.db')), 'without --purge the data dir stays');
  assert.ok(existsSync(join(b.dir, 'config', 'butter', 'config.json')), "without --purge the CLI's config stays");

  // Idempotent: nothing left to remove, and it says so.
  assert.deepEqual(down(b, []).removed, []);
  const again = b.host(['down', '--data-dir', b.dataDir]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /nothing to remove/);
});

test('butter down --purge after butter up crashed: the stale state goes, and the data dir and config with it', async () => {
  const b = await butterWithVm();
  await b.kill(); // SIGKILL: no cleanup of its own; the VM, dnsmasqs and wireguard-go keep running
  // Added now, with no agent running: the agent's own garbage collection takes every rule at its priorities.
  assert.equal(b.sh('ip', ['rule', 'add', ...USER_RULE]).code, 0);
  assert.notDeepEqual(leftovers(b).qemu, [], 'the VM outlived butter up');
  const out = down(b, ['--purge']);
  assert.deepEqual(leftovers(b), NOTHING);
  assert.ok(!existsSync(b.dataDir), 'the data dir is gone');
  userThingsStay(b, true);
  assert.ok(!existsSync(join(b.dir, 'config', 'butter', 'config.json')), "the CLI's config (this Butter's admin token) is gone");
  assert.deepEqual(
    out.removed.filter((r) => r.kind === 'data-dir' || r.kind === 'config').map((r) => r.name),
    [join(b.dir, 'config', 'butter', 'config.json'), b.dataDir],
    'it says what it removed',
  );
  assert.ok(!out.removed.some((r) => r.kind === 'butter-up'), "the crashed up's pidfile names nobody to stop");
  assert.deepEqual(down(b, ['--purge']).removed, []);
});
