/**
 * Add an image from files on this computer: each file is uploaded as a blob (progress from
 * the XHR's upload events), then the image is made from their digests. An error of an upload
 * is shown next to that file's field.
 */
import { useState } from 'preact/hooks';
import { ButterError, type Client } from '../../../../src/sdk/client.ts';
import type { Image } from '../../../../src/api/schemas/image.ts';
import { ApiErrorNote } from '../../app/api-error.tsx';
import { CliHint } from '../../app/cli-hint.tsx';
import { Field } from '../../app/field.tsx';
import { currentSession } from '../../app/session.ts';
import { useAction } from '../use-action.ts';
import { size } from '../../app/format.ts';
import { uploadBlob } from './upload.ts';

interface Props {
  client: Client;
  onAdded(): void;
}

type FileField = 'disk' | 'kernel' | 'initrd' | 'rootDisk';

interface Progress {
  field: FileField;
  name: string;
  loaded: number;
  total: number;
}

const FLAG: Record<FileField, string> = { disk: '--file', kernel: '--kernel', initrd: '--initrd', rootDisk: '--root-disk' };

export function AddImage({ client, onAdded }: Props) {
  const [name, setName] = useState('');
  const [kind, setKind] = useState<'disk' | 'kernel'>('disk');
  const [files, setFiles] = useState<Partial<Record<FileField, File>>>({});
  const [sha256, setSha256] = useState('');
  const [cmdline, setCmdline] = useState('');
  const [progress, setProgress] = useState<Progress | null>(null);
  const add = useAction<Image>();

  const upload = async (field: FileField, expected?: string): Promise<string> => {
    const file = files[field];
    if (!file) throw new ButterError(400, 'invalid', 'choose a file', field);
    setProgress({ field, name: file.name, loaded: 0, total: file.size });
    // The one call not made through the SDK (it cannot report upload progress) needs the
    // session's CSRF token itself: asked of the session, never kept in storage.
    const csrf = (await currentSession(client))?.csrf;
    try {
      const blob = await uploadBlob(file, { baseUrl: client.url, csrf, ...(expected ? { sha256: expected } : {}), onProgress: (loaded, total) => setProgress({ field, name: file.name, loaded, total }) });
      return blob.sha256;
    } catch (e) {
      // The upload's own errors (`body`: empty) belong to the file; a digest mismatch to `sha256`.
      if (e instanceof ButterError && e.field !== 'sha256') throw new ButterError(e.status, e.code, `${file.name}: ${e.message}`, field);
      throw e;
    }
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    const img = await add.run(async () => {
      if (kind === 'disk') {
        const disk = await upload('disk', sha256.trim() || undefined);
        return client.call('createImage', { body: { name: name.trim(), kind: 'disk', disk } });
      }
      const kernel = await upload('kernel');
      const initrd = await upload('initrd');
      const rootDisk = files.rootDisk ? await upload('rootDisk') : undefined;
      return client.call('createImage', { body: { name: name.trim(), kind: 'kernel', kernel, initrd, ...(rootDisk ? { rootDisk } : {}), ...(cmdline.trim() ? { cmdline: cmdline.trim() } : {}) } });
    });
    if (img) onAdded();
  };

  const fileInput = (field: FileField, label: string, required: boolean) => (
    <Field label={label} name={field} error={add.error}>
      <input type="file" required={required} onChange={(e) => setFiles((f) => ({ ...f, [field]: e.currentTarget.files?.[0] }))} />
    </Field>
  );
  const words = (Object.keys(FLAG) as FileField[]).filter((f) => files[f] && (kind === 'disk' ? f === 'disk' : f !== 'disk')).flatMap((f) => [FLAG[f], files[f]!.name]);
  const pct = progress && progress.total > 0 ? Math.floor((progress.loaded / progress.total) * 100) : 0;
  return (
    <form class="card add-image" onSubmit={submit} aria-label="Add an image">
      <h2>Add an image</h2>
      <div class="row">
        <Field label="Name" name="name" error={add.error}>
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} required autocomplete="off" />
        </Field>
        <fieldset>
          <legend>Kind</legend>
          <label>
            <input type="radio" name="image-kind" checked={kind === 'disk'} onChange={() => setKind('disk')} /> disk (qcow2 or raw)
          </label>
          <label>
            <input type="radio" name="image-kind" checked={kind === 'kernel'} onChange={() => setKind('kernel')} /> kernel + initrd (direct boot)
          </label>
        </fieldset>
      </div>
      {kind === 'disk' ? (
        <div class="row">
          {fileInput('disk', 'Disk image file', true)}
          <Field label="Expected sha256 (optional)" name="sha256" error={add.error} hint="refused unless the file has this digest">
            <input value={sha256} onInput={(e) => setSha256(e.currentTarget.value)} autocomplete="off" spellcheck={false} />
          </Field>
        </div>
      ) : (
        <div class="row">
          {fileInput('kernel', 'Kernel file', true)}
          {fileInput('initrd', 'Initrd file', true)}
          {fileInput('rootDisk', 'Root disk file (optional)', false)}
          <Field label="Kernel command line (optional)" name="cmdline" error={add.error}>
            <input value={cmdline} onInput={(e) => setCmdline(e.currentTarget.value)} autocomplete="off" />
          </Field>
        </div>
      )}
      <button type="submit" class="primary" disabled={add.busy}>
        {add.busy ? 'Adding…' : 'Upload and add'}
      </button>
      {progress ? (
        <div class="upload-progress" data-testid="upload-progress">
          <label for="upload-progress-bar">
            {progress.loaded < progress.total ? 'uploading' : 'uploaded'} {progress.name}: {size(progress.loaded)} / {size(progress.total)} ({pct}%)
          </label>
          <progress id="upload-progress-bar" max={progress.total || 1} value={progress.loaded} />
        </div>
      ) : null}
      <ApiErrorNote error={add.error} fields={['name', 'disk', 'kernel', 'initrd', 'rootDisk', 'sha256', 'cmdline']} />
      {add.result ? (
        <p role="status" data-testid="image-added">
          image {add.result.name} added ({add.result.kind}, {size(add.result.sizeBytes)}), sha256:<code>{add.result.sha256}</code>
        </p>
      ) : null}
      <CliHint args={['image', 'add', name.trim() || 'NAME', ...(words.length ? words : [kind === 'disk' ? '--file' : '--kernel', 'FILE']), ...(kind === 'disk' && sha256.trim() ? ['--sha256', sha256.trim()] : []), ...(kind === 'kernel' && cmdline.trim() ? ['--cmdline', cmdline.trim()] : [])]} />
    </form>
  );
}
