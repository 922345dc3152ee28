/**
 * One VM: its state (live: its own audit events refetch it), where it runs, its address, and,
 * for an operator, the actions, resize, console log and interactive console.
 */
import { useRef, useState } from 'preact/hooks';
import type { Vm } from '../../../../src/api/schemas/vm.ts';
import { ApiErrorNote } from '../../app/api-error.tsx';
import { CliHint } from '../../app/cli-hint.tsx';
import type { PageProps } from '../../app/context.ts';
import { size, when } from '../../app/format.ts';
import { href } from '../../app/router.ts';
import { useLoad } from '../../app/use-load.ts';
import { VmActions } from './vm-actions.tsx';
import { LazyConsole } from './vm-console-lazy.tsx';
import { VmLogs } from './vm-logs.tsx';
import { VmResize } from './vm-resize.tsx';

export function VmDetail({ client, can, useEvents, name }: PageProps & { name: string }) {
  const vm = useLoad(() => client.call('getVm', { params: { name } }), [name]);
  const [gone, setGone] = useState(false);
  // Once its deletion is asked it is not fetched again (that could only race its end).
  const going = useRef(false);
  useEvents({ resource: 'vm', name }, (m) => {
    const action = 'event' in m ? m.event.action : undefined;
    if (action === 'deleted') return setGone(true);
    if (action === 'delete') going.current = true;
    if (going.current) return vm.set((old) => (old ? { ...old, state: 'deleting' } : old));
    vm.reload();
  });
  const v = vm.data;
  const changed = (next: Vm) => vm.set(() => next);
  return (
    <section>
      <p>
        <a href={href('vms')}>← VMs</a>
      </p>
      <h1>{name}</h1>
      <ApiErrorNote error={vm.error} />
      {gone ? (
        <p role="status">
          {name} was deleted. <a href={href('vms')}>Back to the VMs</a>
        </p>
      ) : v ? (
        <>
          <dl class="props">
            <dt>State</dt>
            <dd>
              <span class={`state ${v.state}`} data-testid="vm-state">
                {v.state}
              </span>
              {v.reason ? <span class="muted"> ({v.reason})</span> : null} · power {v.power}
            </dd>
            <dt>Node</dt>
            <dd>{v.node ? <a href={href('overview', v.node)}>{v.node}</a> : '—'}</dd>
            <dt>Address</dt>
            <dd data-testid="vm-address">
              {v.nics.map((n, i) => (
                <div>
                  eth{i}: {n.ip ?? '—'} on {n.network} <span class="muted">{n.mac}</span>
                </div>
              ))}
            </dd>
            <dt>Size</dt>
            <dd data-testid="vm-size">
              {v.cpus} cpu, {size(v.memoryBytes)} memory, {size(v.diskBytes)} disk
              {v.pending ? (
                <span class="muted">
                  {' '}
                  (at the next start: {v.pending.cpus} cpu, {size(v.pending.memoryBytes)})
                </span>
              ) : null}
            </dd>
            <dt>Image</dt>
            <dd>{v.image}</dd>
            {v.service ? (
              <>
                <dt>Service</dt>
                <dd>{v.service}</dd>
              </>
            ) : null}
            {v.warning ? (
              <>
                <dt>Warning</dt>
                <dd class="warn">{v.warning}</dd>
              </>
            ) : null}
            <dt>Created</dt>
            <dd>{when(v.createdAt)}</dd>
          </dl>
          <CliHint args={['vm', 'show', name]} />
          {can('operator') ? (
            <>
              <VmActions client={client} vm={v} onChanged={changed} />
              <VmResize key={`${v.cpus}-${v.memoryBytes}`} client={client} vm={v} onChanged={changed} />
              <h2>Console</h2>
              <LazyConsole client={client} name={name} />
              <h2>Console log</h2>
              <VmLogs client={client} name={name} />
            </>
          ) : null}
        </>
      ) : null}
    </section>
  );
}
