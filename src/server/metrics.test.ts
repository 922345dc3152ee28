import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Node } from '../api/schemas/node.ts';
import { ControlPlaneMetrics } from './metrics.ts';

const GiB = 1024 ** 3;
const node = (name: string, o: Partial<Node> = {}): Node => ({
  name,
  state: 'ready',
  cordoned: false,
  group: 'default',
  zone: 'default',
  labels: {},
  accel: 'tcg',
  accelReason: null,
  driver: 'sim',
  capacity: { cpus: 4, memoryBytes: 8 * GiB, diskBytes: 100 * GiB },
  reserved: { cpus: 0, memoryBytes: GiB, diskBytes: 0 },
  allocatable: { cpus: 16, memoryBytes: 7 * GiB, diskBytes: 100 * GiB },
  allocated: { cpus: 2, memoryBytes: 2 * GiB, diskBytes: 10 * GiB },
  free: { cpus: 14, memoryBytes: 5 * GiB, diskBytes: 90 * GiB },
  vmCount: 2,
  mesh: null,
  lastHeartbeatAt: null,
  createdAt: '2026-12-01T00:00:00.000Z',
  ...o,
});

const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

test("nodes' and VMs' gauges are read from the store once per scrape, and a node removed since is gone", async () => {
  let nodes = [node('a'), node('b', { state: 'unreachable', capacity: null, cordoned: true })];
  let reads = 0;
  const m = new ControlPlaneMetrics({
    nodes: () => (reads++, nodes),
    vmStates: () => ({ running: 3, error: 1 }),
    revision: () => 42,
  });
  const text = await m.scrape();
  assert.equal(reads, 1, 'one read of the nodes for all their gauges');
  assert.equal(value(text, 'butter_node_capacity_memory_bytes{node="a"}'), 8 * GiB);
  assert.equal(value(text, 'butter_node_capacity_memory_bytes{node="b"}'), undefined, 'no capacity reported: no sample, not a false 0');
  assert.equal(value(text, 'butter_node_reserved_memory_bytes{node="a"}'), GiB);
  assert.equal(value(text, 'butter_node_allocatable_cpus{node="a"}'), 16);
  assert.equal(value(text, 'butter_node_allocated_disk_bytes{node="a"}'), 10 * GiB);
  assert.equal(value(text, 'butter_node_state{node="b",state="unreachable"}'), 1);
  assert.equal(value(text, 'butter_node_state{node="b",state="ready"}'), 0);
  assert.equal(value(text, 'butter_node_cordoned{node="b"}'), 1);
  assert.equal(value(text, 'butter_node_vms{node="a"}'), 2);
  assert.equal(value(text, 'butter_vms{state="running"}'), 3);
  assert.equal(value(text, 'butter_vms{state="pending"}'), 0, 'every state, at 0 when none');
  assert.equal(value(text, 'butter_store_revision'), 42);

  nodes = [node('a')];
  const again = await m.scrape();
  assert.equal(reads, 2);
  assert.doesNotMatch(again, /node="b"/);
});

test('requests are counted by route id, method and status; scheduler refusals once per reason', async () => {
  const m = new ControlPlaneMetrics({ nodes: () => [], vmStates: () => ({}), revision: () => 0 });
  m.answered('getVm', 'GET', 200, 0.003);
  m.answered('getVm', 'GET', 200, 0.2);
  m.answered('getVm', 'GET', 404, 0.001);
  m.placed();
  m.refused(['not_ready', 'memory']);
  m.refused(['memory']);
  m.replanned();
  const text = await m.scrape();
  assert.equal(value(text, 'butter_api_requests_total{route="getVm",method="GET",status="200"}'), 2);
  assert.equal(value(text, 'butter_api_requests_total{route="getVm",method="GET",status="404"}'), 1);
  assert.equal(value(text, 'butter_api_request_duration_seconds_count{route="getVm",method="GET"}'), 3);
  assert.equal(value(text, 'butter_api_request_duration_seconds_bucket{le="0.005",route="getVm",method="GET"}'), 2);
  assert.equal(value(text, 'butter_scheduler_placements_total'), 1);
  assert.equal(value(text, 'butter_scheduler_refusals_total{reason="memory"}'), 2);
  assert.equal(value(text, 'butter_scheduler_refusals_total{reason="not_ready"}'), 1);
  assert.equal(value(text, 'butter_scheduler_refusals_total{reason="disk"}'), 0, 'every reason from the start');
  assert.equal(value(text, 'butter_scheduler_replans_total'), 1);
  assert.doesNotMatch(text, /nodejs_active_handles_total/, "prom-client's misnamed gauges are not served");
  assert.ok(value(text, 'process_resident_memory_bytes')! > 0);
});
