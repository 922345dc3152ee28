/** The root: learn the session at load (GET /v1/session), then the sign-in form or the shell. */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { PanelContext, type Panel } from './context.ts';
import { EventHub } from './events.ts';
import { ApiErrorNote } from './api-error.tsx';
import { browserClient, currentSession, SESSION_ENDED, signOut, type Session } from './session.ts';
import { SignIn } from './sign-in.tsx';
import { Shell } from './shell.tsx';
import { eventSource } from './event-source.ts';

export function App() {
  const { client, setCsrf, onEnded } = useMemo(browserClient, []);
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [error, setError] = useState<unknown>();
  const [ended, setEnded] = useState(false);
  useEffect(() => {
    currentSession(client).then((s) => setSession(s ?? null), setError);
  }, [client]);
  // A 401 while signed in: the session ended on the server. Back to the form, saying so.
  useEffect(() => {
    onEnded(
      session
        ? () => {
            setCsrf(undefined);
            setEnded(true);
            setSession(null);
          }
        : undefined,
    );
  }, [session]);
  // One event stream per signed-in session.
  const panel = useMemo<Panel | undefined>(() => {
    if (!session) return undefined;
    setCsrf(session.csrf);
    return { client, role: session.role, events: new EventHub(eventSource(client)) };
  }, [client, session]);
  useEffect(() => () => panel?.events.close(), [panel]);

  if (error) return <ApiErrorNote error={error} />;
  if (session === undefined) return <p class="loading">Loading…</p>;
  if (!panel)
    return (
      <SignIn
        client={client}
        notice={ended ? SESSION_ENDED : undefined}
        onSignedIn={(s) => {
          setEnded(false);
          setSession(s);
        }}
      />
    );
  const out = async () => {
    try {
      await signOut(client);
    } finally {
      setCsrf(undefined);
      setSession(null);
    }
  };
  return (
    <PanelContext.Provider value={panel}>
      <Shell onSignOut={out} />
    </PanelContext.Provider>
  );
}
