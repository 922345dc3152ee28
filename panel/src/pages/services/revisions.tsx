/** A service's revisions (`GET …/revisions`, operators: they hold the variables), newest first, with rollback. */
import type { Client } from '../../../../src/sdk/client.ts';
import type { Service } from '../../../../src/api/schemas/service.ts';
import { ApiErrorNote } from '../../app/api-error.tsx';
import { CliHint } from '../../app/cli-hint.tsx';
import { ResourceTable } from '../../app/resource-table.tsx';
import { useLoad } from '../../app/use-load.ts';
import { useAction } from '../use-action.ts';

interface Props {
  client: Client;
  service: Service;
  version: number;
  onChanged(): void;
}

export function Revisions({ client, service: s, version, onChanged }: Props) {
  const revs = useLoad(() => client.call('listServiceRevisions', { params: { name: s.name } }), [s.name, s.targetRevision, version]);
  const rollback = useAction<Service>();
  return (
    <div class="revisions">
      <h4>Revisions</h4>
      <ApiErrorNote error={revs.error} />
      <ResourceTable
        label={`Revisions of ${s.name}`}
        rows={revs.data?.items ?? []}
        rowKey={(r) => r.number}
        rowProps={(r) => ({ 'data-revision': r.number })}
        columns={[
          {
            head: 'Revision',
            cell: (r) => (
              <>
                {r.number}
                {r.current ? ' (current)' : ''}
                {r.target && !r.current ? ' (target)' : ''}
              </>
            ),
          },
          {
            head: 'Image',
            cell: (r) => (
              <>
                {r.image} <code title={r.imageDigest}>{r.imageDigest.slice(0, 12)}</code>
              </>
            ),
          },
          { head: 'Variables', cell: (r) => <code>{JSON.stringify(r.vars)}</code> },
          { head: 'Created', cell: (r) => new Date(r.createdAt).toLocaleString() },
        ]}
        action={{
          label: (r) => `Roll back to ${r.number}`,
          shown: (r) => !r.target,
          disabled: rollback.busy,
          ask: (r) => ({
            title: `Roll ${s.name} back to revision ${r.number}?`,
            action: `Roll back to ${r.number}`,
            body: (
              <>
                <p>Its instances are replaced one at a time.</p>
                <CliHint args={['service', 'rollback', s.name, '--to', r.number]} />
              </>
            ),
          }),
          run: async (r) => {
            if (await rollback.run(() => client.call('rollbackService', { params: { name: s.name }, body: { to: r.number } }))) onChanged();
          },
        }}
      />
      <ApiErrorNote error={rollback.error} />
      {rollback.result ? <p role="status">rolling back to revision {rollback.result.targetRevision}</p> : null}
      <CliHint args={['service', 'history', s.name]} />
    </div>
  );
}
