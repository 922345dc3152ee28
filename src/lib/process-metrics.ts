/**
 * The process's own metrics (prom-client's defaults: CPU, resident memory, file descriptors,
 * heap, event-loop lag, GC) in a registry, as node_exporter-style `process_*` and `nodejs_*`.
 * Less three that prom-client names wrongly: `nodejs_active_{handles,requests,resources}_total`
 * are gauges, and `_total` is for counters only (Prometheus' own linter, `promtool check
 * metrics`, refuses them), so the control plane and the agents do not serve them.
 */
import { collectDefaultMetrics, type Registry } from 'prom-client';

const MISNAMED = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function processMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED) registry.removeSingleMetric(name);
}
