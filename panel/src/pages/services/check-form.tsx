/**
 * "May A reach B on port P?" for the two nodes picked in the graph (`GET /v1/paths/check`):
 * the answer with the path(s) that allow it, or why not.
 */
import { useEffect, useState } from 'preact/hooks';
import type { Client } from '../../../../src/sdk/client.ts';
import type { PathCheck } from '../../../../src/api/schemas/path.ts';
import { ApiErrorNote } from '../../app/api-error.tsx';
import { CliHint } from '../../app/cli-hint.tsx';
import { Field } from '../../app/field.tsx';
import { useAction } from '../use-action.ts';

interface Props {
  client: Client;
  /** Graph node ids: `service:NAME`, `internet`, `cidr:…`. */
  from: string;
  to: string;
  /** A port to start with (one a path between them names), if any. */
  port?: string;
  onClose(): void;
}

/** The check's FROM as the API and the CLI take it. */
function source(id: string): { internet: true } | { from: string } {
  if (id === 'internet') return { internet: true };
  return { from: id.replace(/^(service|cidr):/, '') };
}

export function CheckForm({ client, from, to, port: initial, onClose }: Props) {
  const [port, setPort] = useState(initial ?? '');
  const check = useAction<PathCheck>();
  useEffect(() => check.reset(), [from, to]);
  const src = source(from);
  const target = to.replace(/^service:/, '');
  const submit = async (e: Event) => {
    e.preventDefault();
    await check.run(() => client.call('checkPath', { query: { ...('internet' in src ? { internet: '1' as const } : { from: src.from }), to: target, port: port.trim() } }));
  };
  const a = check.result;
  const fromText = 'internet' in src ? 'the internet' : src.from;
  return (
    <form class="card check-form" onSubmit={submit} aria-label="Check a path">
      <h3>
        May {fromText} reach {target}?
      </h3>
      {to.startsWith('service:') ? null : <p class="hint">Pick a service as B: only services are reached.</p>}
      <div class="row">
        <Field label="Port" name="port" error={check.error} hint="80, or 53/udp">
          <input value={port} onInput={(e) => setPort(e.currentTarget.value)} required autocomplete="off" />
        </Field>
      </div>
      <div class="actions">
        <button type="submit" class="primary" disabled={check.busy}>
          Check
        </button>
        <button type="button" onClick={onClose}>
          Done
        </button>
      </div>
      <ApiErrorNote error={check.error} fields={['port']} />
      {a ? (
        <div class={a.allowed ? 'answer allowed' : 'answer denied'} role="status" data-testid="check-answer">
          <strong>{a.allowed ? 'allowed' : 'denied'}</strong>{' '}
          {'service' in a.from ? a.from.service : a.from.cidr} → {a.to}:{a.port}/{a.proto}
          {a.allowed ? (
            <ul>
              {(a.paths.length > 1 ? a.paths : a.path ? [a.path] : []).map((p) => (
                <li key={p.id}>
                  by path <code>{p.id}</code>: {p.text}
                </li>
              ))}
            </ul>
          ) : (
            <p>{a.reason}</p>
          )}
        </div>
      ) : null}
      <CliHint args={['path', 'check', ...('internet' in src ? ['--internet', target, port.trim() || 'PORT'] : [src.from, target, port.trim() || 'PORT'])]} />
    </form>
  );
}
