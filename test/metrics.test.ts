// Prometheus metrics over real HTTP: the control plane's `/metrics` and a simulated agent's
// listener, scraped with a metrics token; who may scrape (and what a metrics token may not
// do); the exposition format checked by Prometheus' own parser, `promtool check metrics`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { Agent } from '../src/agent/agent.ts';
import { MetricsServer, whoisWith } from '../src/agent/metrics-server.ts';
import { requires } from './requires.ts';
import { assertPromtoolAccepts, promtool } from './promtool.ts';
import { rejects, simAgent, startTestCloud, until, uploadImage, type TestCloud } from './helpers.ts';

const tool = promtool();
let cloud: TestCloud;
let agent: Agent;
let stateDir: string;
let server: MetricsServer;
let agentUrl: string;
let clock = Date.now();
const tokens: Record<'metrics' | 'viewer' | 'operator', string> = { metrics: '', viewer: '', operator: '' };

before(async () => {
  cloud = await startTestCloud();
  for (const role of ['metrics', 'viewer', 'operator'] as const) tokens[role] = (await cloud.admin.call('createToken', { body: { role } })).secret;
  const sim = await simAgent(cloud, 'sim-1', { metrics: true });
  ({ agent, stateDir } = sim);
  server = new MetricsServer({ scrape: () => agent.metrics!.scrape(), whois: whoisWith(sim.client), now: () => clock });
  agentUrl = await server.listen('127.0.0.1', 0);
  await agent.start();
  await uploadImage(cloud.admin, 'img');
  await cloud.admin.call('createVm', { body: { name: 'web', image: 'img', memory: '128M' } });
  await until('web running', async () => ((await cloud.admin.call('getVm', { params: { name: 'web' } })).state === 'running' ? true : undefined));
  // A refusal the scheduler must count: no node has 64 TiB.
  await rejects(cloud.admin.call('createVm', { body: { name: 'huge', image: 'img', memory: '64T' } }), 422);
});

after(async () => {
  await server?.close();
  await agent?.stop();
  await cloud?.close();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

const scrape = (url: string, token?: string) => fetch(`${url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

/** The value of the one sample `name{labels}` (labels as written, in order), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test("the control plane's /metrics: requests by route id, nodes' capacity and allocation, VMs by state, scheduler decisions, in Prometheus' format", { skip: requires('path' in tool, 'missing' in tool ? tool.missing : '') }, async () => {
  await cloud.admin.call('getVm', { params: { name: 'web' } });
  const res = await scrape(cloud.url, tokens.metrics);
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');

  // By the route's id, never the URL (which names the VM).
  assert.ok(sample(text, 'butter_api_requests_total{route="getVm",method="GET",status="200"}')! >= 1, 'getVm counted');
  assert.ok(sample(text, 'butter_api_requests_total{route="createVm",method="POST",status="201"}')! >= 1, 'createVm counted');
  assert.ok(sample(text, 'butter_api_requests_total{route="createVm",method="POST",status="422"}')! >= 1, 'the refused create counted');
  assert.ok(sample(text, 'butter_api_request_duration_seconds_count{route="getVm",method="GET"}')! >= 1);
  assert.doesNotMatch(text, /\/v1\/vms\/web/);

  const MiB = 1024 * 1024;
  const node = await cloud.admin.call('getNode', { params: { name: 'sim-1' } });
  assert.equal(sample(text, 'butter_node_allocated_memory_bytes{node="sim-1"}'), 128 * MiB);
  assert.equal(sample(text, 'butter_node_allocated_cpus{node="sim-1"}'), 1);
  assert.equal(sample(text, 'butter_node_capacity_memory_bytes{node="sim-1"}'), node.capacity!.memoryBytes);
  assert.equal(sample(text, 'butter_node_allocatable_disk_bytes{node="sim-1"}'), node.allocatable.diskBytes);
  assert.equal(sample(text, 'butter_node_state{node="sim-1",state="ready"}'), 1);
  assert.equal(sample(text, 'butter_node_state{node="sim-1",state="unreachable"}'), 0);
  assert.equal(sample(text, 'butter_vms{state="running"}'), 1);
  assert.equal(sample(text, 'butter_vms{state="error"}'), 0);
  assert.equal(sample(text, 'butter_scheduler_placements_total'), 1);
  assert.equal(sample(text, 'butter_scheduler_refusals_total{reason="memory"}'), 1);
  assert.equal(sample(text, 'butter_scheduler_refusals_total{reason="cpus"}'), 0);
  const health = (await (await fetch(`${cloud.url}/healthz`)).json()) as { revision: number };
  assert.ok(sample(text, 'butter_store_revision')! > 0 && sample(text, 'butter_store_revision')! <= health.revision);
  assert.ok(sample(text, 'process_resident_memory_bytes')! > 0, 'the default process metrics');

  assertPromtoolAccepts((tool as { path: string }).path, text, "the control plane's /metrics");
});

test('only a metrics or admin token scrapes the control plane, and a metrics token reads nothing else', async () => {
  assert.equal((await scrape(cloud.url)).status, 401);
  assert.equal((await scrape(cloud.url, tokens.viewer)).status, 403);
  assert.equal((await scrape(cloud.url, tokens.operator)).status, 403);
  assert.equal((await scrape(cloud.url, cloud.cp.adminToken!)).status, 200);
  for (const path of ['/v1/vms', '/v1/nodes', '/v1/events', '/v1/tokens', '/v1/openapi.json']) {
    const res = await fetch(`${cloud.url}${path}`, { headers: { authorization: `Bearer ${tokens.metrics}` } });
    assert.equal(res.status, 403, `${path}: ${await res.text()}`);
  }
  // The only other thing it may call: who it is (the agents ask that of a scraper's token).
  const who = await fetch(`${cloud.url}/v1/whoami`, { headers: { authorization: `Bearer ${tokens.metrics}` } });
  assert.equal(((await who.json()) as { role: string }).role, 'metrics');
});

test("an agent's /metrics: each VM's CPU, memory, disk and network counters by name and id, reconciles, in Prometheus' format", { skip: requires('path' in tool, 'missing' in tool ? tool.missing : '') }, async () => {
  const vm = await cloud.admin.call('getVm', { params: { name: 'web' } });
  const res = await scrape(agentUrl, tokens.metrics);
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const labels = `{vm="web",id="${vm.id}"}`;
  for (const name of ['butter_vm_cpu_seconds_total', 'butter_vm_memory_rss_bytes', 'butter_vm_disk_read_bytes_total', 'butter_vm_disk_written_bytes_total', 'butter_vm_network_receive_bytes_total', 'butter_vm_network_transmit_bytes_total']) {
    assert.ok(sample(text, `${name}${labels}`)! > 0, `${name}${labels} in:\n${text}`);
  }
  assert.equal(sample(text, `butter_vm_memory_bytes${labels}`), 128 * 1024 * 1024);
  assert.ok(sample(text, 'butter_agent_reconcile_duration_seconds_count{result="ok"}')! >= 1);
  assert.equal(sample(text, 'butter_agent_info{node="sim-1"}'), 1);
  assert.notEqual(sample(text, 'butter_agent_images_cached'), undefined);
  assert.notEqual(sample(text, 'butter_agent_heartbeat_failures_total'), undefined);
  assertPromtoolAccepts((tool as { path: string }).path, text, "the agent's /metrics");
});

test("the agent checks a scraper's token with the control plane: none or unknown 401, a viewer 403, the answer kept a minute", async () => {
  assert.equal((await scrape(agentUrl)).status, 401);
  assert.equal((await scrape(agentUrl, 'bt_000000000000_' + 'x'.repeat(32))).status, 401);
  assert.equal((await scrape(agentUrl, tokens.viewer)).status, 403);
  assert.equal((await scrape(agentUrl, tokens.operator)).status, 403);
  assert.equal((await scrape(agentUrl, cloud.cp.adminToken!)).status, 200);
  const other = await cloud.admin.call('createToken', { body: { role: 'metrics' } });
  assert.equal((await scrape(agentUrl, other.secret)).status, 200);
  await cloud.admin.call('deleteToken', { params: { id: other.token.id } });
  // Revoked, but the agent's answer is a minute old at most: still admitted...
  assert.equal((await scrape(agentUrl, other.secret)).status, 200);
  // ...and asked again once the minute is over.
  clock += 61_000;
  assert.equal((await scrape(agentUrl, other.secret)).status, 401);
  assert.equal((await fetch(`${agentUrl}/v1/vms`, { headers: { authorization: `Bearer ${tokens.metrics}` } })).status, 404);
});
