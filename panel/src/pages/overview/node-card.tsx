/** One node: state, zone, group, accelerator and its three bars. */
import type { Node } from '../../../../src/api/schemas/node.ts';
import { Bar } from '../../app/bar.tsx';
import { cpus, size } from '../../app/format.ts';

export function NodeCard({ node: n, focused }: { node: Node; focused: boolean }) {
  const accel = n.accel ? n.accel.toUpperCase() : 'accelerator unknown';
  return (
    <article class={focused ? 'card focused' : 'card'} id={`node-${n.name}`} tabIndex={focused ? -1 : undefined} aria-labelledby={`node-${n.name}-h`} data-node={n.name}>
      <h2 id={`node-${n.name}-h`}>{n.name}</h2>
      <p>
        <span class={`state ${n.state}`}>{n.state}</span>
        {n.cordoned ? <span class="state"> · cordoned</span> : null} · zone {n.zone} · group {n.group} · <abbr title={n.accelReason ?? ''}>{accel}</abbr> · {n.vmCount} VM{n.vmCount === 1 ? '' : 's'}
      </p>
      <Bar label="CPU" allocated={n.allocated.cpus} allocatable={n.allocatable.cpus} total={n.capacity?.cpus ?? 0} format={cpus} />
      <Bar label="Memory" allocated={n.allocated.memoryBytes} allocatable={n.allocatable.memoryBytes} total={n.capacity?.memoryBytes ?? 0} format={size} />
      <Bar label="Disk" allocated={n.allocated.diskBytes} allocatable={n.allocatable.diskBytes} total={n.capacity?.diskBytes ?? 0} format={size} />
    </article>
  );
}
