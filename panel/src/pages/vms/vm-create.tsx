/**
 * The create form: image, size, placement (automatic, or a node, zone or group), networks,
 * user-data and SSH keys. The API's field errors appear next to their fields; a refusal by
 * the scheduler (`no_capacity`, with its reasons) under the placement it is about, or under
 * the form when it names none. The CLI line follows the form as it is filled.
 */
import { useState } from 'preact/hooks';
import type { VmCreate } from '../../../../src/api/schemas/vm.ts';
import type { Client } from '../../../../src/sdk/client.ts';
import { ApiErrorNote, errorForField } from '../../app/api-error.tsx';
import { CliHint } from '../../app/cli-hint.tsx';
import { Field } from '../../app/field.tsx';
import { useLoad } from '../../app/use-load.ts';
import { createWords } from './cli.ts';

type Placement = 'auto' | 'node' | 'zone' | 'group';
const FIELDS = ['name', 'image', 'cpus', 'memory', 'disk', 'node', 'zone', 'group', 'networks', 'userData', 'sshKeys'];

export function VmCreateForm({ client, onDone }: { client: Client; onDone: () => void }) {
  const choices = useLoad(async () => {
    const [images, networks, nodes] = await Promise.all([client.call('listImages', {}), client.call('listNetworks', {}), client.call('listNodes', {})]);
    return { images: images.items, networks: networks.items, nodes: nodes.items };
  });
  const [f, setF] = useState({ name: '', image: '', cpus: '1', memory: '512M', disk: '2G', placement: 'auto' as Placement, where: '', networks: [] as string[], userData: '', sshKeys: '' });
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const set = (k: keyof typeof f) => (e: { currentTarget: { value: string } }) => setF({ ...f, [k]: e.currentTarget.value });

  const c = choices.data;
  const image = f.image || c?.images[0]?.name || '';
  const body: VmCreate = {
    name: f.name.trim(),
    image,
    ...(f.cpus.trim() ? { cpus: Number(f.cpus) } : {}),
    ...(f.memory.trim() ? { memory: f.memory.trim() } : {}),
    ...(f.disk.trim() ? { disk: f.disk.trim() } : {}),
    ...(f.networks.length ? { networks: f.networks } : {}),
    ...(f.placement !== 'auto' && f.where ? { [f.placement]: f.where } : {}),
    ...(f.userData ? { userData: f.userData } : {}),
    ...(f.sshKeys.trim() ? { sshKeys: f.sshKeys.split('\n').map((l) => l.trim()).filter(Boolean) } : {}),
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await client.call('createVm', { body });
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const places = c ? { node: c.nodes.map((n) => n.name), zone: [...new Set(c.nodes.map((n) => n.zone))], group: [...new Set(c.nodes.map((n) => n.group))] } : { node: [], zone: [], group: [] };
  const netError = errorForField(error, 'networks');
  return (
    <form class="card create" onSubmit={submit} aria-labelledby="create-h" noValidate>
      <h2 id="create-h">Create a VM</h2>
      <ApiErrorNote error={choices.error} />
      <Field label="Name" name="name" error={error} hint="Lowercase letters, digits and '-'.">
        <input value={f.name} onInput={set('name')} autocomplete="off" required />
      </Field>
      <Field label="Image" name="image" error={error}>
        <select value={image} onChange={set('image')}>
          {(c?.images ?? []).map((i) => (
            <option value={i.name}>
              {i.name}
              {i.status === 'building' ? ' (building)' : ''}
            </option>
          ))}
        </select>
      </Field>
      <div class="row">
        <Field label="CPUs" name="cpus" error={error}>
          <input type="number" min={1} max={64} value={f.cpus} onInput={set('cpus')} />
        </Field>
        <Field label="Memory" name="memory" error={error} hint="e.g. 256M, 1G">
          <input value={f.memory} onInput={set('memory')} />
        </Field>
        <Field label="Disk" name="disk" error={error} hint="e.g. 2G">
          <input value={f.disk} onInput={set('disk')} />
        </Field>
      </div>
      <fieldset>
        <legend>Placement</legend>
        {(['auto', 'node', 'zone', 'group'] as const).map((p) => (
          <label class="choice">
            <input type="radio" name="placement" value={p} checked={f.placement === p} onChange={() => setF({ ...f, placement: p, where: '' })} />
            {p === 'auto' ? 'Automatic (the scheduler chooses)' : `On a ${p}`}
          </label>
        ))}
        {f.placement !== 'auto' ? (
          <Field label={`The ${f.placement}`} name={f.placement} error={error}>
            <select value={f.where} onChange={set('where')}>
              <option value="">choose…</option>
              {places[f.placement].map((n) => (
                <option value={n}>{n}</option>
              ))}
            </select>
          </Field>
        ) : null}
      </fieldset>
      <fieldset aria-describedby={netError ? 'networks-err' : undefined} class={netError ? 'invalid' : undefined}>
        <legend>Networks (none checked: default)</legend>
        {(c?.networks ?? []).map((n) => (
          <label class="choice">
            <input
              type="checkbox"
              name="networks"
              value={n.name}
              checked={f.networks.includes(n.name)}
              onChange={(e) => setF({ ...f, networks: e.currentTarget.checked ? [...f.networks, n.name] : f.networks.filter((x) => x !== n.name) })}
            />
            {n.name} <span class="muted">{n.cidr}</span>
          </label>
        ))}
        {netError ? (
          <small id="networks-err" class="field-error" role="alert">
            {netError.message}
          </small>
        ) : null}
      </fieldset>
      <Field label="User-data" name="userData" error={error} hint="cloud-init: a script or #cloud-config (optional)">
        <textarea class="mono" rows={6} value={f.userData} onInput={set('userData')} spellcheck={false} />
      </Field>
      <Field label="SSH keys" name="sshKeys" error={error} hint="OpenSSH public keys, one per line (optional)">
        <textarea class="mono" rows={3} value={f.sshKeys} onInput={set('sshKeys')} spellcheck={false} />
      </Field>
      <ApiErrorNote error={error} fields={FIELDS} />
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create'}
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
      <CliHint args={createWords(body)} />
    </form>
  );
}
