// The systemd units in deploy/systemd/: systemd's own checker accepts each one, and each runs
// what scripts/install.sh installs, restarts on failure, and (where an agent runs) leaves the
// VMs running when the daemon stops. systemd is not PID 1 on every test machine (containers,
// CI sandboxes), so `systemd-analyze verify` is the check that runs everywhere; install.sh
// installs it (the `systemd` package).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requires } from './requires.ts';

const root = new URL('..', import.meta.url).pathname;
const dir = join(root, 'deploy/systemd');
const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
const haveAnalyze = analyze.status === 0;

/** The unit's `Key=value` lines, by key (a key may repeat). */
function keys(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

/** Where install.sh links the `butter` command: the units must run exactly that. */
function installedCommand(): string {
  const m = /^ln -sf "\$PWD\/bin\/butter" (\S+)$/m.exec(readFileSync(join(root, 'scripts/install.sh'), 'utf8'));
  assert.ok(m, 'install.sh links bin/butter somewhere');
  return m[1]!;
}

const units = (): string[] => readdirSync(dir).filter((f) => f.endsWith('.service')).sort();

test('there is a unit for butter up, butter server and butter agent', () => {
  assert.deepEqual(units(), ['butter-agent.service', 'butter-server.service', 'butter-up.service']);
});

test('systemd-analyze verify accepts every unit, with nothing to say', { skip: requires(haveAnalyze, 'systemd-analyze not installed (apt-get install systemd)') }, (t) => {
  // verify also checks that ExecStart's program exists: this checkout's bin/butter stands in for
  // the link install.sh makes (the next test holds the units to that link), so the check does
  // not depend on which checkout, if any, this machine installed.
  const bin = installedCommand();
  const tmp = mkdtempSync(join(tmpdir(), 'butter-units-'));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  for (const unit of units()) {
    const text = readFileSync(join(dir, unit), 'utf8');
    assert.ok(text.includes(`ExecStart=${bin} `), unit);
    writeFileSync(join(tmp, unit), text.replace(`ExecStart=${bin} `, `ExecStart=${join(root, 'bin/butter')} `));
    // --man=no: the units' Documentation= pages need not be installed on this machine.
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', join(tmp, unit)], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${unit}: ${r.stderr}`);
    // Warnings (an unknown key, a missing binary) exit 0 too: any output is a complaint.
    assert.equal(r.stderr.trim() + r.stdout.trim(), '', `${unit}: systemd-analyze verify complained`);
  }
});

test('each unit runs the installed butter, restarts on failure, after the network is up', () => {
  const bin = installedCommand();
  for (const unit of units()) {
    const k = keys(readFileSync(join(dir, unit), 'utf8'));
    const verb = unit.replace(/^butter-|\.service$/g, '');
    const exec = k.get('ExecStart') ?? [];
    assert.equal(exec.length, 1, unit);
    assert.ok(exec[0]!.startsWith(`${bin} ${verb} `), `${unit}: ExecStart=${exec[0]} runs \`${bin} ${verb}\``);
    assert.deepEqual(k.get('Restart'), ['on-failure'], unit);
    assert.ok(Number(k.get('RestartSec')?.[0]?.replace(/s$/, '')) > 0, `${unit}: RestartSec`);
    assert.ok(k.get('After')?.some((v) => v.split(/\s+/).includes('network-online.target')), `${unit}: After=network-online.target`);
    assert.ok(k.get('Wants')?.some((v) => v.split(/\s+/).includes('network-online.target')), `${unit}: Wants=network-online.target`);
    // Logs go to the journal: stdout and stderr are the journal's unless a unit says otherwise.
    assert.equal(k.get('StandardOutput'), undefined, unit);
    assert.equal(k.get('StandardError'), undefined, unit);
  }
});

test('units that run an agent leave its VMs, dnsmasq and wireguard-go running when it stops', () => {
  for (const unit of ['butter-up.service', 'butter-agent.service']) {
    const k = keys(readFileSync(join(dir, unit), 'utf8'));
    // systemd's default (control-group) would kill every QEMU with the agent: a crash-restart
    // would reboot every guest, where the agent is built to adopt them.
    assert.deepEqual(k.get('KillMode'), ['process'], unit);
    // Gateway namespaces are bind mounts under /run/netns: any option that gives the service
    // its own mount namespace would hide them from the host and lose them at a restart.
    for (const key of ['PrivateTmp', 'ProtectSystem', 'ProtectHome', 'PrivateDevices', 'ReadWritePaths', 'ReadOnlyPaths', 'InaccessiblePaths', 'PrivateMounts', 'MountFlags', 'ProtectKernelTunables', 'DeviceAllow', 'DevicePolicy']) {
      assert.equal(k.get(key), undefined, `${unit}: ${key} would break QEMU, netns or sysctl`);
    }
  }
});
