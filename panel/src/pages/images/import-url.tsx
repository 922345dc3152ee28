/**
 * Add a disk image by URL: the control plane downloads it itself (`POST /v1/images/import`),
 * so the bytes never pass through this browser (and no other site's CORS rules apply). The
 * digest is required: the image is refused unless the download has it. The list shows the
 * import's progress (images.tsx refetches while one runs).
 */
import { useState } from 'preact/hooks';
import type { Client } from '../../../../src/sdk/client.ts';
import type { Image } from '../../../../src/api/schemas/image.ts';
import { ApiErrorNote } from '../../app/api-error.tsx';
import { CliHint } from '../../app/cli-hint.tsx';
import { Field } from '../../app/field.tsx';
import { useAction } from '../use-action.ts';

export function ImportUrl({ client, onStarted }: { client: Client; onStarted(): void }) {
  const [name, setName] = useState('');
  const [url, setUrl] = useState('');
  const [sha256, setSha256] = useState('');
  const start = useAction<Image>();
  const submit = async (e: Event) => {
    e.preventDefault();
    const img = await start.run(() => client.call('importImage', { body: { name: name.trim(), kind: 'disk', url: url.trim(), sha256: sha256.trim() } }));
    if (img) onStarted();
  };
  return (
    <form class="card add-image" onSubmit={submit} aria-label="Add an image by URL">
      <h2>Add a disk image by URL</h2>
      <div class="row">
        <Field label="Image name" name="name" error={start.error}>
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} required autocomplete="off" />
        </Field>
        <Field label="URL" name="url" error={start.error} hint="http or https; the control plane downloads it">
          <input type="url" value={url} onInput={(e) => setUrl(e.currentTarget.value)} required autocomplete="off" spellcheck={false} />
        </Field>
        <Field label="sha256" name="sha256" error={start.error} hint="the digest the image must have">
          <input value={sha256} onInput={(e) => setSha256(e.currentTarget.value)} required autocomplete="off" spellcheck={false} />
        </Field>
      </div>
      <button type="submit" class="primary" disabled={start.busy}>
        {start.busy ? 'Starting…' : 'Import'}
      </button>
      <ApiErrorNote error={start.error} fields={['name', 'url', 'sha256']} />
      {start.result ? (
        <p role="status" data-testid="import-started">
          importing {start.result.name}: its progress is in the list above
        </p>
      ) : null}
      <CliHint args={['image', 'add', name.trim() || 'NAME', '--url', url.trim() || 'URL', '--sha256', sha256.trim() || 'SHA256', '--remote']} />
    </form>
  );
}
