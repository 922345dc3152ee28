/** The paths one drawn edge stands for, each removable (`DELETE /v1/paths/{id}`). */
import { useState } from 'preact/hooks';
import type { Client } from '../../../../src/sdk/client.ts';
import type { Path } from '../../../../src/api/schemas/path.ts';
import { ApiErrorNote } from '../../app/api-error.tsx';
import { CliHint } from '../../app/cli-hint.tsx';
import { Confirm } from '../../app/confirm.tsx';
import { useAction } from '../use-action.ts';

interface Props {
  client: Client;
  paths: readonly Path[];
  canChange: boolean;
  onClose(): void;
  onRemoved(): void;
}

const range = ([lo, hi]: readonly [number, number]) => (lo === hi ? `${lo}` : `${lo}-${hi}`);

export function EdgeDetail({ client, paths, canChange, onClose, onRemoved }: Props) {
  const [asking, setAsking] = useState<Path | null>(null);
  const remove = useAction();
  const confirm = async () => {
    const p = asking!;
    setAsking(null);
    if (await remove.run(() => client.call('deletePath', { params: { id: p.id } }))) onRemoved();
  };
  return (
    <section class="card edge-detail" aria-label="Paths of the selected edge">
      <h3>Paths</h3>
      {paths.length === 0 ? <p>No path (it was just removed).</p> : null}
      <div class="table-wrap" tabIndex={0} role="region" aria-label="Paths of the selected edge">
      <table>
        <thead>
          <tr>
            <th scope="col">Id</th>
            <th scope="col">Path</th>
            <th scope="col">Network</th>
            <th scope="col">Published</th>
            {canChange ? <th scope="col">Action</th> : null}
          </tr>
        </thead>
        <tbody>
          {paths.map((p) => (
            <tr key={p.id} data-path={p.id}>
              <td>
                <code>{p.id}</code>
              </td>
              <td>{p.text}</td>
              <td>{p.network}</td>
              <td>{p.hostPorts ? `${range(p.hostPorts)}/${p.proto} on every node` : '—'}</td>
              {canChange ? (
                <td>
                  <button type="button" class="danger small" onClick={() => setAsking(p)} aria-label={`remove path ${p.text}`}>
                    Remove
                  </button>
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>
      </div>
      <ApiErrorNote error={remove.error} />
      {paths.map((p) => (
        <CliHint key={p.id} args={['path', 'rm', p.id]} />
      ))}
      <button type="button" onClick={onClose}>
        Close
      </button>
      {asking ? (
        <Confirm title={`Remove path ${asking.text}?`} action="Remove path" danger onConfirm={() => void confirm()} onCancel={() => setAsking(null)}>
          <p>Nodes stop admitting it within a second.</p>
          <CliHint args={['path', 'rm', asking.id]} />
        </Confirm>
      ) : null}
    </section>
  );
}
