/**
 * Images: the list, remove, and add by uploading files from this computer (a disk image, or a
 * kernel with its initrd and optional root disk): each file goes up as a blob with progress,
 * then `POST /v1/images` names them; the digest is shown. Or add a disk by URL, which the
 * control plane downloads (images/import-url.tsx). Live: image events reload the list; while an
 * import runs (and only then) the list is refetched every second for its progress (the import
 * sends audit events only at its start and end, not per chunk).
 */
import { useEffect, useState } from 'preact/hooks';
import type { Image } from '../../../src/api/schemas/image.ts';
import './pages.css';
import type { PageProps } from '../app/context.ts';
import { ApiErrorNote } from '../app/api-error.tsx';
import { CliHint } from '../app/cli-hint.tsx';
import { Confirm } from '../app/confirm.tsx';
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
  const [removing, setRemoving] = useState<string | null>(null);
  const remove = useAction();
  const doRemove = async () => {
    const name = removing!;
    setRemoving(null);
    if (await remove.run(() => client.call('deleteImage', { params: { name } }))) list.reload();
  };
  return (
    <div class="page images-page">
      <h1>Images</h1>
      <ApiErrorNote error={list.error ?? remove.error} />
      <div class="table-wrap" tabIndex={0} role="region" aria-label="Images">
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Kind</th>
              <th scope="col">Status</th>
              <th scope="col">Format</th>
              <th scope="col">Size</th>
              <th scope="col">sha256</th>
              <th scope="col">VMs</th>
              {canChange ? <th scope="col">Action</th> : null}
            </tr>
          </thead>
          <tbody>
            {(list.data?.items ?? []).map((i: Image) => (
              <tr key={i.name} data-image={i.name}>
                <td>{i.name}</td>
                <td>{i.kind}</td>
                <td>
                  <ImageStatus image={i} />
                </td>
                <td>{i.format ?? i.rootFormat ?? '—'}</td>
                <td>{i.status === 'ready' ? size(i.sizeBytes) : ''}</td>
                <td>
                  <code title={i.sha256 ?? ''}>{i.sha256?.slice(0, 12) ?? ''}</code>
                </td>
                <td>{i.vmCount}</td>
                {canChange ? (
                  <td>
                    <button type="button" class="danger small" onClick={() => setRemoving(i.name)}>
                      Remove {i.name}
                    </button>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <CliHint args={['image', 'list']} />
      {canChange ? <AddImage client={client} onAdded={() => list.reload()} /> : null}
      {canChange ? <ImportUrl client={client} onStarted={() => list.reload()} /> : null}
      {removing ? (
        <Confirm title={`Remove image ${removing}?`} action={`Remove ${removing}`} danger onConfirm={() => void doRemove()} onCancel={() => setRemoving(null)}>
          <p>Refused while a VM uses it.</p>
          <CliHint args={['image', 'rm', removing]} />
        </Confirm>
      ) : null}
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
