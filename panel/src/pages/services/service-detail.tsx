/** One service: its instances and rollout; scale it; update and roll back (with its revisions). */
import { useState } from 'preact/hooks';
import type { Client } from '../../../../src/sdk/client.ts';
import type { Service } from '../../../../src/api/schemas/service.ts';
import { ApiErrorNote } from '../../app/api-error.tsx';
import { CliHint } from '../../app/cli-hint.tsx';
import { Field } from '../../app/field.tsx';
import { ResourceTable } from '../../app/resource-table.tsx';
import { useAction } from '../use-action.ts';
import { Revisions } from './revisions.tsx';
import { UpdateForm } from './update-form.tsx';

interface Props {
  client: Client;
  service: Service;
  canChange: boolean;
  /** Bumped when an event says the service changed: the revisions are loaded again. */
  version: number;
  onChanged(): void;
}

function rolloutText(s: Service): string {
  if (s.rollout.state === 'rolling') return `rolling to revision ${s.targetRevision}`;
  if (s.rollout.state === 'failed') return `failed: ${s.rollout.message ?? ''}`;
  return s.rollout.message ?? 'done';
}

export function ServiceDetail({ client, service: s, canChange, version, onChanged }: Props) {
  const running = s.instances.filter((i) => i.state === 'running').length;
  return (
    <section class="card service-detail" aria-labelledby="service-title">
      <h3 id="service-title">Service {s.name}</h3>
      <dl class="facts">
        <dt>network</dt>
        <dd>{s.network}</dd>
        <dt>DNS name</dt>
        <dd>{s.dnsName}</dd>
        <dt>block</dt>
        <dd>{s.block}</dd>
        <dt>instances</dt>
        <dd data-testid="service-running">
          {running}/{s.count} running
        </dd>
        <dt>image</dt>
        <dd>{s.image}</dd>
        <dt>revision</dt>
        <dd>{s.revision}</dd>
        <dt>rollout</dt>
        <dd class={`rollout ${s.rollout.state}`}>{rolloutText(s)}</dd>
        {s.state === 'deleting' ? (
          <>
            <dt>state</dt>
            <dd>deleting</dd>
          </>
        ) : null}
      </dl>
      {s.warnings.map((w) => (
        <p key={w} class="warning">
          {w}
        </p>
      ))}
      <ResourceTable
        label={`Instances of ${s.name}`}
        caption="Instances"
        rows={s.instances}
        rowKey={(i) => i.name}
        rowProps={(i) => ({ 'data-instance': i.name })}
        columns={[
          { head: 'Instance', cell: (i) => i.name },
          { head: 'State', cell: (i) => (i.reason ? `${i.state} (${i.reason})` : i.state), class: (i) => `state ${i.state}` },
          { head: 'Node', cell: (i) => i.node ?? '—' },
          { head: 'Zone', cell: (i) => i.zone ?? '—' },
          { head: 'IP', cell: (i) => i.ip ?? '—' },
          { head: 'Revision', cell: (i) => i.revision },
        ]}
      />
      {canChange && s.state === 'active' ? <ScaleForm client={client} service={s} onChanged={onChanged} /> : null}
      {canChange && s.state === 'active' ? <UpdateForm client={client} service={s} onChanged={onChanged} /> : null}
      {canChange ? <Revisions client={client} service={s} version={version} onChanged={onChanged} /> : null}
    </section>
  );
}

function ScaleForm({ client, service: s, onChanged }: { client: Client; service: Service; onChanged(): void }) {
  const [count, setCount] = useState(String(s.count));
  const scale = useAction<Service>();
  const submit = async (e: Event) => {
    e.preventDefault();
    if (await scale.run(() => client.call('scaleService', { params: { name: s.name }, body: { count: Number(count) } }))) onChanged();
  };
  return (
    <form class="scale-form" onSubmit={submit} aria-label={`Scale ${s.name}`}>
      <h4>Scale</h4>
      <div class="row">
        <Field label="Instances" name="count" error={scale.error}>
          <input type="number" min={0} max={1000} value={count} onInput={(e) => setCount(e.currentTarget.value)} required />
        </Field>
        <button type="submit" class="primary" disabled={scale.busy}>
          Scale
        </button>
      </div>
      <ApiErrorNote error={scale.error} fields={['count']} />
      {scale.result ? <p role="status">scaled to {scale.result.count}</p> : null}
      <CliHint args={['service', 'scale', s.name, count || 'COUNT']} />
    </form>
  );
}
