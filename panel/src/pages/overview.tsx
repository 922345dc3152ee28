/**
 * Overview: every node with its CPU, memory and disk (allocated, allocatable, total), the
 * cluster's totals, and warnings that link to their node. Live: node and VM events refetch.
 */
import { useEffect } from 'preact/hooks';
import type { PageProps } from '../app/context.ts';
import { ApiErrorNote } from '../app/api-error.tsx';
import { Bar } from '../app/bar.tsx';
import { CliHint } from '../app/cli-hint.tsx';
import { cpus, size } from '../app/format.ts';
import { href } from '../app/router.ts';
import { useLoad } from '../app/use-load.ts';
import { NodeCard } from './overview/node-card.tsx';
import { nodeWarnings, totals } from './overview/warnings.ts';

export function OverviewPage({ client, useEvents, route }: PageProps) {
  const nodes = useLoad(async () => (await client.call('listNodes', {})).items);
  // Allocation moves with VMs, state with nodes: either kind of event refetches the list.
  useEvents({ resource: 'node' }, nodes.reload);
  useEvents({ resource: 'vm' }, nodes.reload);
  const focus = route.rest[0];
  useEffect(() => {
    if (focus && nodes.data) document.getElementById(`node-${focus}`)?.focus();
  }, [focus, nodes.data]);

  const list = nodes.data ?? [];
  const t = totals(list);
  const warnings = list.flatMap(nodeWarnings);
  return (
    <section>
      <h1>Overview</h1>
      <ApiErrorNote error={nodes.error} />
      {nodes.data === undefined && !nodes.error ? <p>Loading…</p> : null}
      {nodes.data !== undefined ? (
        <>
          <div class="card totals" aria-labelledby="totals-h">
            <h2 id="totals-h">
              Cluster: {list.length} node{list.length === 1 ? '' : 's'}, {list.reduce((s, n) => s + n.vmCount, 0)} VMs
            </h2>
            <Bar label="CPU" allocated={t.allocated.cpus} allocatable={t.allocatable.cpus} total={t.total.cpus} format={cpus} />
            <Bar label="Memory" allocated={t.allocated.memoryBytes} allocatable={t.allocatable.memoryBytes} total={t.total.memoryBytes} format={size} />
            <Bar label="Disk" allocated={t.allocated.diskBytes} allocatable={t.allocatable.diskBytes} total={t.total.diskBytes} format={size} />
          </div>
          {warnings.length ? (
            <div aria-labelledby="warn-h">
              <h2 id="warn-h">Warnings</h2>
              <ul class="warnings">
                {warnings.map((w) => (
                  <li data-kind={w.kind}>
                    <a href={href('overview', w.node)}>{w.text}</a>
                  </li>
                ))}
              </ul>
            </div>
          ) : null}
          <h2>Nodes</h2>
          {list.length === 0 ? <p class="muted">No nodes yet: run `butter agent --join` on a machine.</p> : null}
          <div class="cards">
            {list.map((n) => (
              <NodeCard node={n} focused={n.name === focus} />
            ))}
          </div>
          <CliHint args={['node', 'list']} />
        </>
      ) : null}
    </section>
  );
}
