/** The sign-in form: a token in, a session cookie out; a refused token's error under the field. */
import { useState } from 'preact/hooks';
import type { Client } from '../../../src/sdk/client.ts';
import { ApiErrorNote } from './api-error.tsx';
import { Field } from './field.tsx';
import { signIn, type Session } from './session.ts';

/** `notice`: why the form is shown again (the session ended under the open page). */
export function SignIn({ client, onSignedIn, notice }: { client: Client; onSignedIn: (s: Session) => void; notice?: string | undefined }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      onSignedIn(await signIn(client, token.trim()));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="sign-in">
      <h1>Butter</h1>
      {notice && (
        <p class="notice" role="status" data-testid="session-ended">
          {notice}
        </p>
      )}
      <form onSubmit={submit} aria-label="Sign in">
        <Field label="API token" name="token" error={error} hint="From `butter token create`, or the admin token `butter up` printed.">
          <input type="password" autocomplete="off" required value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        </Field>
        <ApiErrorNote error={error} fields={['token']} />
        <button type="submit" class="primary" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}
