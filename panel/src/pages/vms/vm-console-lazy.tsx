/** The console, loaded when first shown: xterm.js is most of the panel's bytes, so the first load skips it. */
import { useEffect, useState } from 'preact/hooks';
import type { Client } from '../../../../src/sdk/client.ts';
import { ApiErrorNote } from '../../app/api-error.tsx';

type Console = typeof import('./vm-console.tsx').VmConsole;

export function LazyConsole(props: { client: Client; name: string }) {
  const [C, setC] = useState<{ c: Console } | undefined>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    import('./vm-console.tsx').then((m) => setC({ c: m.VmConsole }), setError);
  }, []);
  if (error) return <ApiErrorNote error={error} />;
  return C ? <C.c {...props} /> : <p class="muted">Loading the console…</p>;
}
