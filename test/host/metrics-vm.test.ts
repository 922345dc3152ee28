/**
 * The agent's metrics of one real guest (`butter up` in a fresh namespace, the `tiny` image
 * under real QEMU, TCG here): its CPU seconds (`/proc/PID/stat`), resident memory, disk bytes
 * (QMP `query-blockstats`) and network bytes (its tap's counters) are real: non-zero once it
 * has booted (DHCP and the metadata fetch are traffic), and growing after the guest reads and
 * writes its disks and pings its gateway. Prometheus' `promtool check metrics` accepts what
 * the agent and the control plane serve. Nothing leaves the namespace (no uplink, --no-egress).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { ButterInNetns } from './butter-cli.ts';
import { requires } from '../requires.ts';
import { assertPromtoolAccepts, promtool } from '../promtool.ts';

const haveQemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0;
const tool = promtool();
const skip = requires(haveQemu, 'qemu-system-x86_64 not installed') || requires(process.getuid?.() === 0, 'needs root (namespaces, taps)') || requires('path' in tool, 'missing' in tool ? tool.missing : '');

let b: ButterInNetns | undefined;
after(async () => {
  await b?.cleanup();
});

/** The value of the one sample `series` (name and labels as served), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test("a real guest's CPU, memory, disk and network counters on the agent's /metrics are real and grow with its work", { skip }, async () => {
  b = new ButterInNetns();
  await b.start();
  const metricsToken = b.ok(['token', 'create', '--role', 'metrics']).trim();
  const viewerToken = b.ok(['token', 'create', '--role', 'viewer']).trim();
  const admin = readFileSync(join(b.dataDir, 'admin.token'), 'utf8').trim();
  b.ok(['vm', 'create', 'm1', '--image', 'tiny', '--memory', '128M', '--data-disk', '16M', '--wait']);
  const vm = JSON.parse(b.ok(['vm', 'show', 'm1', '--json'])) as { id: string; ip: string };
  await b.logsUntil('m1', /butter-tiny: ready/, 180_000);

  const scrape = (token?: string, url = 'http://127.0.0.1:7702/metrics') => {
    const r = b!.sh('curl', ['-ksS', '-w', '\n%{http_code}', ...(token ? ['-H', `authorization: Bearer ${token}`] : []), url]);
    const lines = r.stdout.trimEnd().split('\n');
    return { status: Number(lines.pop()), text: `${lines.join('\n')}\n` };
  };
  assert.equal(scrape().status, 401, 'no token');
  assert.equal(scrape(viewerToken).status, 403, 'a viewer');

  const labels = `{vm="m1",id="${vm.id}"}`;
  const counters = ['butter_vm_cpu_seconds_total', 'butter_vm_disk_read_bytes_total', 'butter_vm_disk_written_bytes_total', 'butter_vm_network_receive_bytes_total', 'butter_vm_network_transmit_bytes_total'];
  const read = () => {
    const r = scrape(metricsToken);
    assert.equal(r.status, 200, r.text);
    const values = Object.fromEntries([...counters, 'butter_vm_memory_rss_bytes', 'butter_vm_memory_bytes'].map((n) => [n, sample(r.text, `${n}${labels}`)]));
    return { text: r.text, values };
  };
  const first = read();
  for (const [name, v] of Object.entries(first.values)) assert.ok(v !== undefined && v > 0, `${name}${labels} is ${v} after boot:\n${first.text}`);
  assert.equal(first.values.butter_vm_memory_bytes, 128 * 1024 * 1024);
  // QEMU's resident memory: some of the guest's 128 MiB and QEMU's own, far from nothing.
  assert.ok(first.values.butter_vm_memory_rss_bytes! > 16 * 1024 * 1024, `rss ${first.values.butter_vm_memory_rss_bytes}`);
  assertPromtoolAccepts((tool as { path: string }).path, first.text, "the agent's /metrics with a real VM");

  // Work the guest: read its root disk, write its data disk, ping its gateway (inside the namespace).
  const gateway = vm.ip.replace(/\.\d+$/, '.1');
  const work = `dd if=/dev/vda of=/dev/null bs=64k count=256 2>/dev/null; dd if=/dev/zero of=/dev/vdb bs=64k count=64 conv=fsync 2>/dev/null; ping -c 10 -i 0.2 -s 1000 ${gateway} >/dev/null; echo metrics-work-done\n`;
  const typed = b.sh('curl', ['-ksS', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', '-H', `authorization: Bearer ${admin}`, '-H', 'content-type: application/json', '-d', JSON.stringify({ base64: Buffer.from(work).toString('base64') }), `https://127.0.0.1:${b.port}/v1/vms/m1/console`]);
  assert.equal(typed.stdout, '202', typed.stderr);
  await b.logsUntil('m1', /^metrics-work-done\r?$/m, 120_000);
  await sleep(500);
  const second = read();
  for (const name of counters) {
    assert.ok(second.values[name]! > first.values[name]!, `${name} grew with the guest's work: ${first.values[name]} → ${second.values[name]}`);
  }
  // 16 MiB read and 4 MiB written, at least (the guest's own I/O adds to it).
  assert.ok(second.values.butter_vm_disk_read_bytes_total! - first.values.butter_vm_disk_read_bytes_total! >= 16 * 1024 * 1024, 'the dd read');
  assert.ok(second.values.butter_vm_disk_written_bytes_total! - first.values.butter_vm_disk_written_bytes_total! >= 4 * 1024 * 1024, 'the dd write');
  // Ten pings of 1,000 bytes each way.
  assert.ok(second.values.butter_vm_network_transmit_bytes_total! - first.values.butter_vm_network_transmit_bytes_total! >= 10_000, 'the pings sent');
  assert.ok(second.values.butter_vm_network_receive_bytes_total! - first.values.butter_vm_network_receive_bytes_total! >= 10_000, 'the replies received');
  assert.ok(sample(second.text, 'butter_agent_reconcile_duration_seconds_count{result="ok"}')! >= 1);
  assert.equal(sample(second.text, 'butter_agent_images_cached'), 3, "the tiny image's kernel, initrd and root disk");

  const cp = scrape(metricsToken, `https://127.0.0.1:${b.port}/metrics`);
  assert.equal(cp.status, 200, cp.text);
  assert.equal(sample(cp.text, 'butter_vms{state="running"}'), 1);
  assertPromtoolAccepts((tool as { path: string }).path, cp.text, "the control plane's /metrics");
});
