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
import { Field } from '../app/field.tsx';
import { ResourceTable } from '../app/resource-table.tsx';
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
  const revoke = useAction();
  return (
    <div class="page tokens-page">
      <h1>Tokens</h1>
      <ApiErrorNote error={list.error ?? revoke.error} />
      <ResourceTable
        label="Tokens"
        rows={list.data?.items ?? []}
        rowKey={(t) => t.id}
        rowProps={(t) => ({ 'data-token': t.id })}
        columns={[
          { head: 'Id', cell: (t) => <code>{t.id}</code> },
          { head: 'Role', cell: (t) => t.role },
          { head: 'Node', cell: (t) => t.node ?? '—' },
          { head: 'Description', cell: (t) => t.description ?? '' },
          { head: 'Created', cell: (t) => new Date(t.createdAt).toLocaleString() },
        ]}
        action={{
          label: () => 'Revoke',
          ariaLabel: (t) => `revoke token ${t.id}`,
          danger: true,
          ask: (t) => ({
            title: `Revoke token ${t.id}?`,
            action: 'Revoke token',
            body: (
              <>
                <p>Whoever holds it is refused from now on; its browser sessions end.</p>
                <CliHint args={['token', 'rm', t.id]} />
              </>
            ),
          }),
          run: async (t) => {
            if (await revoke.run(() => client.call('deleteToken', { params: { id: t.id } }))) list.reload();
          },
        }}
      />
      <CliHint args={['token', 'list']} />
      <CreateToken {...props} onCreated={() => list.reload()} />
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
