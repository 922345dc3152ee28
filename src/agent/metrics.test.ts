import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentMetrics, type MetricsVm } from './metrics.ts';
import type { VmSample } from './host/vm-stats.ts';

const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

const vm = (name: string, id: string): MetricsVm => ({ id, name, memoryBytes: 256 << 20, cpus: 2, taps: [`bt${id}`] });

test("each running VM's counters, sampled once per scrape, by name and id; a VM that cannot be read is left out and counted", async () => {
  const samples: Record<string, VmSample | Error | undefined> = {
    aaa: { cpuSeconds: 12.5, rssBytes: 100 << 20, diskReadBytes: 1000, diskWriteBytes: 2000, netRxBytes: 300, netTxBytes: 400 },
    bbb: new Error('qmp: connection refused'),
    ccc: undefined, // not running
  };
  const asked: string[] = [];
  const m = new AgentMetrics({
    node: 'n1',
    vms: () => [vm('web', 'aaa'), vm('db', 'bbb'), vm('off', 'ccc')],
    stats: {
      sample: async (id, taps) => {
        asked.push(`${id}:${taps.join(',')}`);
        const s = samples[id];
        if (s instanceof Error) throw s;
        return s;
      },
    },
    images: async () => ({ count: 2, bytes: 5000 }),
  });
  const text = await m.scrape();
  assert.deepEqual(asked.sort(), ['aaa:btaaa', 'bbb:btbbb', 'ccc:btccc'], 'each VM sampled once for all its series');
  const l = '{vm="web",id="aaa"}';
  assert.equal(value(text, `butter_vm_cpu_seconds_total${l}`), 12.5);
  assert.equal(value(text, `butter_vm_memory_rss_bytes${l}`), 100 << 20);
  assert.equal(value(text, `butter_vm_memory_bytes${l}`), 256 << 20);
  assert.equal(value(text, `butter_vm_cpus${l}`), 2);
  assert.equal(value(text, `butter_vm_disk_read_bytes_total${l}`), 1000);
  assert.equal(value(text, `butter_vm_disk_written_bytes_total${l}`), 2000);
  assert.equal(value(text, `butter_vm_network_receive_bytes_total${l}`), 300);
  assert.equal(value(text, `butter_vm_network_transmit_bytes_total${l}`), 400);
  assert.doesNotMatch(text, /vm="db"|vm="off"/);
  assert.equal(value(text, 'butter_agent_vm_stats_errors_total'), 1);
  assert.equal(value(text, 'butter_agent_images_cached'), 2);
  assert.equal(value(text, 'butter_agent_image_cache_bytes'), 5000);
  assert.equal(value(text, 'butter_agent_info{node="n1"}'), 1);

  // A counter read again is the new reading, not the sum of the two.
  samples.aaa = { ...(samples.aaa as VmSample), cpuSeconds: 13 };
  assert.equal(value(await m.scrape(), `butter_vm_cpu_seconds_total${l}`), 13);
});

test('reconciles are timed by result; failed heartbeats counted', async () => {
  const m = new AgentMetrics({ node: 'n1', vms: () => [], stats: { sample: async () => undefined }, images: async () => ({ count: 0, bytes: 0 }) });
  assert.equal(await m.timeReconcile(async () => 7), 7);
  await assert.rejects(m.timeReconcile(async () => Promise.reject(new Error('boom'))), /boom/);
  m.heartbeatFailed();
  const text = await m.scrape();
  assert.equal(value(text, 'butter_agent_reconcile_duration_seconds_count{result="ok"}'), 1);
  assert.equal(value(text, 'butter_agent_reconcile_duration_seconds_count{result="error"}'), 1);
  assert.equal(value(text, 'butter_agent_heartbeat_failures_total'), 1);
});
