/**
 * Every VM in the cluster, live: an audit event about VM X refetches X alone (`deleted`:
 * removed), a `gap` refetches the list; there is no polling loop.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Vm } from '../../../../src/api/schemas/vm.ts';
import { ButterError } from '../../../../src/sdk/client.ts';
import { ApiErrorNote } from '../../app/api-error.tsx';
import { CliHint } from '../../app/cli-hint.tsx';
import type { PageProps } from '../../app/context.ts';
import { size } from '../../app/format.ts';
import { href } from '../../app/router.ts';
import { useLoad } from '../../app/use-load.ts';
import { ResourceTable } from '../../app/resource-table.tsx';
import { VmCreateForm } from './vm-create.tsx';

const byName = (a: Vm, b: Vm) => a.name.localeCompare(b.name);
/** How long a burst of events is gathered before its VMs are fetched. */
const BURST_MS = 100;

export function VmList({ client, can, useEvents }: PageProps) {
  const vms = useLoad(async () => (await client.call('listVms', {})).items.sort(byName));
  const [creating, setCreating] = useState(false);
  // Events come in bursts (a create is pending → creating → booting → running): they are
  // gathered for a moment, then each VM named is fetched once. A VM whose deletion was asked
  // (`delete`) is not fetched again until it is made anew (`create`): it only shows as
  // `deleting` until its `deleted`, so no fetch races its end and answers 404.
  const pending = useRef(new Map<string, string>());
  const going = useRef(new Set<string>());
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);
  const flush = () => {
    timer.current = undefined;
    const batch = [...pending.current];
    pending.current.clear();
    for (const [name, action] of batch) {
      if (action === 'create') going.current.delete(name);
      if (action === 'delete') going.current.add(name);
      if (action === 'deleted') {
        going.current.delete(name);
        vms.set((old) => old?.filter((v) => v.name !== name));
      } else if (going.current.has(name)) {
        vms.set((old) => old?.map((v) => (v.name === name ? { ...v, state: 'deleting' as const } : v)));
      } else {
        client.call('getVm', { params: { name } }).then(
          (vm) => vms.set((old) => [...(old ?? []).filter((v) => v.name !== name), vm].sort(byName)),
          (e) => (e instanceof ButterError && e.status === 404 ? vms.set((old) => old?.filter((v) => v.name !== name)) : vms.reload()),
        );
      }
    }
  };
  useEvents({ resource: 'vm' }, (m) => {
    if ('gap' in m) return vms.reload();
    const { name, action } = m.event;
    // The burst's decisive action wins: a create, delete or deleted is not overwritten by a state change.
    const was = pending.current.get(name);
    pending.current.set(name, was && ['create', 'delete', 'deleted'].includes(was) && !['create', 'delete', 'deleted'].includes(action) ? was : action);
    timer.current ??= setTimeout(flush, BURST_MS);
  });
  const list = vms.data ?? [];
  return (
    <section>
      <h1>VMs</h1>
      {can('operator') ? (
        creating ? (
          <VmCreateForm client={client} onDone={() => setCreating(false)} />
        ) : (
          <div class="actions">
            <button type="button" class="primary" onClick={() => setCreating(true)}>
              Create VM
            </button>
          </div>
        )
      ) : null}
      <ApiErrorNote error={vms.error} />
      {vms.data === undefined && !vms.error ? <p>Loading…</p> : null}
      {vms.data !== undefined && list.length === 0 ? <p class="muted">No VMs yet.</p> : null}
      {list.length ? (
        <ResourceTable
          label="VMs"
          rows={list}
          rowKey={(v) => v.name}
          rowProps={(v) => ({ 'data-vm': v.name })}
          columns={[
            { head: 'Name', cell: (v) => <a href={href('vms', v.name)}>{v.name}</a> },
            {
              head: 'State',
              cell: (v) => (
                <>
                  <span class={`state ${v.state}`} data-testid="vm-state">
                    {v.state}
                  </span>
                  {v.reason ? <small class="muted"> {v.reason}</small> : null}
                </>
              ),
            },
            { head: 'Node', cell: (v) => v.node ?? '—' },
            { head: 'Address', cell: (v) => v.ip ?? '—' },
            {
              head: 'Size',
              cell: (v) => (
                <>
                  {v.cpus} cpu, {size(v.memoryBytes)}
                </>
              ),
            },
            { head: 'Image', cell: (v) => v.image },
          ]}
        />
      ) : null}
      <CliHint args={['vm', 'list']} />
    </section>
  );
}
