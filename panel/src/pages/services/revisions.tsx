/** A service's revisions (`GET …/revisions`, operators: they hold the variables), newest first, with rollback. */
import { useState } from 'preact/hooks';
import type { Client } from '../../../../src/sdk/client.ts';
import type { Service } from '../../../../src/api/schemas/service.ts';
import { ApiErrorNote } from '../../app/api-error.tsx';
import { CliHint } from '../../app/cli-hint.tsx';
import { Confirm } from '../../app/confirm.tsx';
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
  const [asking, setAsking] = useState<number | null>(null);
  const rollback = useAction<Service>();
  const confirm = async () => {
    const to = asking!;
    setAsking(null);
    if (await rollback.run(() => client.call('rollbackService', { params: { name: s.name }, body: { to } }))) onChanged();
  };
  return (
    <div class="revisions">
      <h4>Revisions</h4>
      <ApiErrorNote error={revs.error} />
      <div class="table-wrap" tabIndex={0} role="region" aria-label={`Revisions of ${s.name}`}>
        <table>
          <thead>
            <tr>
              <th scope="col">Revision</th>
              <th scope="col">Image</th>
              <th scope="col">Variables</th>
              <th scope="col">Created</th>
              <th scope="col">Action</th>
            </tr>
          </thead>
          <tbody>
            {(revs.data?.items ?? []).map((r) => (
              <tr key={r.number} data-revision={r.number}>
                <td>
                  {r.number}
                  {r.current ? ' (current)' : ''}
                  {r.target && !r.current ? ' (target)' : ''}
                </td>
                <td>
                  {r.image} <code title={r.imageDigest}>{r.imageDigest.slice(0, 12)}</code>
                </td>
                <td>
                  <code>{JSON.stringify(r.vars)}</code>
                </td>
                <td>{new Date(r.createdAt).toLocaleString()}</td>
                <td>
                  {r.target ? null : (
                    <button type="button" class="small" onClick={() => setAsking(r.number)} disabled={rollback.busy}>
                      Roll back to {r.number}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <ApiErrorNote error={rollback.error} />
      {rollback.result ? <p role="status">rolling back to revision {rollback.result.targetRevision}</p> : null}
      <CliHint args={['service', 'history', s.name]} />
      {asking !== null ? (
        <Confirm title={`Roll ${s.name} back to revision ${asking}?`} action={`Roll back to ${asking}`} onConfirm={() => void confirm()} onCancel={() => setAsking(null)}>
          <p>Its instances are replaced one at a time.</p>
          <CliHint args={['service', 'rollback', s.name, '--to', asking]} />
        </Confirm>
      ) : null}
    </div>
  );
}
