/** The paths one drawn edge stands for, each removable (`DELETE /v1/paths/{id}`). */
import type { Client } from '../../../../src/sdk/client.ts';
import type { Path } from '../../../../src/api/schemas/path.ts';
import { ApiErrorNote } from '../../app/api-error.tsx';
import { CliHint } from '../../app/cli-hint.tsx';
import { ResourceTable } from '../../app/resource-table.tsx';
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
  const remove = useAction();
  return (
    <section class="card edge-detail" aria-label="Paths of the selected edge">
      <h3>Paths</h3>
      {paths.length === 0 ? <p>No path (it was just removed).</p> : null}
      <ResourceTable
        label="Paths of the selected edge"
        rows={paths}
        rowKey={(p) => p.id}
        rowProps={(p) => ({ 'data-path': p.id })}
        columns={[
          { head: 'Id', cell: (p) => <code>{p.id}</code> },
          { head: 'Path', cell: (p) => p.text },
          { head: 'Network', cell: (p) => p.network },
          { head: 'Published', cell: (p) => (p.hostPorts ? `${range(p.hostPorts)}/${p.proto} on every node` : '—') },
        ]}
        action={
          canChange
            ? {
                label: () => 'Remove',
                ariaLabel: (p) => `remove path ${p.text}`,
                danger: true,
                ask: (p) => ({
                  title: `Remove path ${p.text}?`,
                  action: 'Remove path',
                  body: (
                    <>
                      <p>Nodes stop admitting it within a second.</p>
                      <CliHint args={['path', 'rm', p.id]} />
                    </>
                  ),
                }),
                run: async (p) => {
                  if (await remove.run(() => client.call('deletePath', { params: { id: p.id } }))) onRemoved();
                },
              }
            : undefined
        }
      />
      <ApiErrorNote error={remove.error} />
      {paths.map((p) => (
        <CliHint key={p.id} args={['path', 'rm', p.id]} />
      ))}
      <button type="button" onClick={onClose}>
        Close
      </button>
    </section>
  );
}
