/**
 * Images: the list, remove, and add by uploading files from this computer (a disk image, or a
 * kernel with its initrd and optional root disk): each file goes up as a blob with progress,
 * then `POST /v1/images` names them; the digest is shown. Live: image events reload the list.
 *
 * No "add by URL": the CLI's `--url` downloads on the user's machine and uploads, and a page
 * can fetch another site's file only if that site allows it (CORS), which image mirrors do
 * not; the control plane fetching URLs itself would be a new server-side fetcher (it would
 * reach whatever the control plane's network reaches), which this page does not add.
 */
import { useState } from 'preact/hooks';
import type { Image } from '../../../src/api/schemas/image.ts';
import './pages.css';
import type { PageProps } from '../app/context.ts';
import { ApiErrorNote } from '../app/api-error.tsx';
import { CliHint } from '../app/cli-hint.tsx';
import { Confirm } from '../app/confirm.tsx';
import { useLoad } from '../app/use-load.ts';
import { useAction } from './use-action.ts';
import { AddImage } from './images/add-image.tsx';
import { size } from '../app/format.ts';

export function ImagesPage(props: PageProps) {
  const { client } = props;
  const canChange = props.can('operator');
  const list = useLoad(() => client.call('listImages', {}), [client]);
  props.useEvents({ resource: 'image' }, () => list.reload());
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
                <td>{i.status}</td>
                <td>{i.format ?? i.rootFormat ?? '—'}</td>
                <td>{i.status === 'building' ? '' : size(i.sizeBytes)}</td>
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
      {removing ? (
        <Confirm title={`Remove image ${removing}?`} action={`Remove ${removing}`} danger onConfirm={() => void doRemove()} onCancel={() => setRemoving(null)}>
          <p>Refused while a VM uses it.</p>
          <CliHint args={['image', 'rm', removing]} />
        </Confirm>
      ) : null}
    </div>
  );
}
