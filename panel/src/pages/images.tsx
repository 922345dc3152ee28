/**
 * Images: the list, remove, and add by uploading files from this computer (a disk image, or a
 * kernel with its initrd and optional root disk): each file goes up as a blob with progress,
 * then `POST /v1/images` names them; the digest is shown. Or add a disk by URL, which the
 * control plane downloads (images/import-url.tsx). Live: image events reload the list; while an
 * import runs (and only then) the list is refetched every second for its progress (the import
 * sends audit events only at its start and end, not per chunk).
 */
import { useEffect } from 'preact/hooks';
import type { Image } from '../../../src/api/schemas/image.ts';
import './pages.css';
import type { PageProps } from '../app/context.ts';
import { ApiErrorNote } from '../app/api-error.tsx';
import { CliHint } from '../app/cli-hint.tsx';
import { ResourceTable } from '../app/resource-table.tsx';
import { useLoad } from '../app/use-load.ts';
import { useAction } from './use-action.ts';
import { AddImage } from './images/add-image.tsx';
import { ImportUrl } from './images/import-url.tsx';
import { size } from '../app/format.ts';

export function ImagesPage(props: PageProps) {
  const { client } = props;
  const canChange = props.can('operator');
  const list = useLoad(() => client.call('listImages', {}), [client]);
  props.useEvents({ resource: 'image' }, () => list.reload());
  const importing = (list.data?.items ?? []).some((i) => i.status === 'importing');
  useEffect(() => {
    if (!importing) return;
    const t = setInterval(() => list.reload(), 1000);
    return () => clearInterval(t);
  }, [importing]);
  const remove = useAction();
  return (
    <div class="page images-page">
      <h1>Images</h1>
      <ApiErrorNote error={list.error ?? remove.error} />
      <ResourceTable
        label="Images"
        rows={list.data?.items ?? []}
        rowKey={(i) => i.name}
        rowProps={(i) => ({ 'data-image': i.name })}
        columns={[
          { head: 'Name', cell: (i) => i.name },
          { head: 'Kind', cell: (i) => i.kind },
          { head: 'Status', cell: (i) => <ImageStatus image={i} /> },
          { head: 'Format', cell: (i) => i.format ?? i.rootFormat ?? '—' },
          { head: 'Size', cell: (i) => (i.status === 'ready' ? size(i.sizeBytes) : '') },
          { head: 'sha256', cell: (i) => <code title={i.sha256 ?? ''}>{i.sha256?.slice(0, 12) ?? ''}</code> },
          { head: 'VMs', cell: (i) => i.vmCount },
        ]}
        action={
          canChange
            ? {
                label: (i) => `Remove ${i.name}`,
                danger: true,
                ask: (i) => ({
                  title: `Remove image ${i.name}?`,
                  action: `Remove ${i.name}`,
                  body: (
                    <>
                      <p>Refused while a VM uses it.</p>
                      <CliHint args={['image', 'rm', i.name]} />
                    </>
                  ),
                }),
                run: async (i) => {
                  if (await remove.run(() => client.call('deleteImage', { params: { name: i.name } }))) list.reload();
                },
              }
            : undefined
        }
      />
      <CliHint args={['image', 'list']} />
      {canChange ? <AddImage client={client} onAdded={() => list.reload()} /> : null}
      {canChange ? <ImportUrl client={client} onStarted={() => list.reload()} /> : null}
    </div>
  );
}

/** The status, with an import's progress bar (bytes done / total) or its failure's reason. */
function ImageStatus({ image: i }: { image: Image }) {
  if (i.status === 'importing' && i.import) {
    const { bytesDone, bytesTotal } = i.import;
    const id = `import-${i.name}`;
    return (
      <div class="upload-progress" data-testid="import-progress">
        <label for={id}>
          importing: {size(bytesDone)}
          {bytesTotal ? ` / ${size(bytesTotal)} (${Math.floor((bytesDone / bytesTotal) * 100)}%)` : ''}
        </label>
        {bytesTotal ? <progress id={id} max={bytesTotal} value={bytesDone} /> : <progress id={id} />}
      </div>
    );
  }
  if (i.status === 'failed')
    return (
      <span class="error" data-testid="import-failed">
        failed: {i.import?.error}
      </span>
    );
  return <>{i.status}</>;
}
