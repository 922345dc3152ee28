/**
 * Tokens (admins only: the API refuses everyone else): the list (never a secret), create
 * (the secret is shown once, copyable, and kept in no storage), revoke.
 */
import { useState } from 'preact/hooks';
import { USER_ROLES, type UserRole } from '../../../src/api/schemas/token.ts';
import type { ResponseOf } from '../../../src/api/routes.ts';
import './pages.css';
import type { PageProps } from '../app/context.ts';
import { ApiErrorNote } from '../app/api-error.tsx';
import { CliHint } from '../app/cli-hint.tsx';
import { Confirm } from '../app/confirm.tsx';
import { Field } from '../app/field.tsx';
import { useLoad } from '../app/use-load.ts';
import { useAction } from './use-action.ts';

export function TokensPage(props: PageProps) {
  if (!props.can('admin'))
    return (
      <div class="page tokens-page">
        <h1>Tokens</h1>
        <p>Only an admin sees and manages tokens.</p>
        <CliHint args={['token', 'list']} />
      </div>
    );
  return <Tokens {...props} />;
}

function Tokens(props: PageProps) {
  const { client } = props;
  const list = useLoad(() => client.call('listTokens', {}), [client]);
  props.useEvents({ resource: 'token' }, () => list.reload());
  const [revoking, setRevoking] = useState<string | null>(null);
  const revoke = useAction();
  const doRevoke = async () => {
    const id = revoking!;
    setRevoking(null);
    if (await revoke.run(() => client.call('deleteToken', { params: { id } }))) list.reload();
  };
  return (
    <div class="page tokens-page">
      <h1>Tokens</h1>
      <ApiErrorNote error={list.error ?? revoke.error} />
      <div class="table-wrap" tabIndex={0} role="region" aria-label="Tokens">
        <table>
          <thead>
            <tr>
              <th scope="col">Id</th>
              <th scope="col">Role</th>
              <th scope="col">Node</th>
              <th scope="col">Description</th>
              <th scope="col">Created</th>
              <th scope="col">Action</th>
            </tr>
          </thead>
          <tbody>
            {(list.data?.items ?? []).map((t) => (
              <tr key={t.id} data-token={t.id}>
                <td>
                  <code>{t.id}</code>
                </td>
                <td>{t.role}</td>
                <td>{t.node ?? '—'}</td>
                <td>{t.description ?? ''}</td>
                <td>{new Date(t.createdAt).toLocaleString()}</td>
                <td>
                  <button type="button" class="danger small" onClick={() => setRevoking(t.id)} aria-label={`revoke token ${t.id}`}>
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <CliHint args={['token', 'list']} />
      <CreateToken {...props} onCreated={() => list.reload()} />
      {revoking ? (
        <Confirm title={`Revoke token ${revoking}?`} action="Revoke token" danger onConfirm={() => void doRevoke()} onCancel={() => setRevoking(null)}>
          <p>Whoever holds it is refused from now on; its browser sessions end.</p>
          <CliHint args={['token', 'rm', revoking]} />
        </Confirm>
      ) : null}
    </div>
  );
}

function CreateToken({ client, onCreated }: PageProps & { onCreated(): void }) {
  const [role, setRole] = useState<UserRole>('viewer');
  const [description, setDescription] = useState('');
  const create = useAction<ResponseOf<'createToken'>>();
  const [copied, setCopied] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setCopied(false);
    if (await create.run(() => client.call('createToken', { body: { role, ...(description.trim() ? { description: description.trim() } : {}) } }))) onCreated();
  };
  const copy = async (secret: string) => {
    try {
      await navigator.clipboard.writeText(secret);
      setCopied(true);
    } catch {
      // No clipboard here (an insecure origin): the secret is selectable.
    }
  };
  const made = create.result;
  return (
    <form class="card" onSubmit={submit} aria-label="Create a token">
      <h2>Create a token</h2>
      <div class="row">
        <Field label="Role" name="role" error={create.error}>
          <select value={role} onChange={(e) => setRole(e.currentTarget.value as UserRole)}>
            {USER_ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Description (optional)" name="description" error={create.error} hint="what it is for">
          <input value={description} onInput={(e) => setDescription(e.currentTarget.value)} maxLength={200} autocomplete="off" />
        </Field>
      </div>
      <button type="submit" class="primary" disabled={create.busy}>
        Create token
      </button>
      <ApiErrorNote error={create.error} fields={['role', 'description']} />
      {made ? (
        <div class="secret" role="status">
          <p>
            {made.token.role} token <code>{made.token.id}</code> issued. This is the only time its secret is shown:
          </p>
          <code class="secret-text" data-testid="token-secret">
            {made.secret}
          </code>{' '}
          <button type="button" class="small" onClick={() => void copy(made.secret)}>
            {copied ? 'copied' : 'copy secret'}
          </button>
          <button type="button" class="small" onClick={() => create.reset()}>
            Hide it
          </button>
        </div>
      ) : null}
      <CliHint args={['token', 'create', '--role', role, ...(description.trim() ? ['--description', description.trim()] : [])]} />
    </form>
  );
}
