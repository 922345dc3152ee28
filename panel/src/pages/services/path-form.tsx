/** Add a path: FROM (a service or a CIDR) may reach TO on PORTS; `hostPort` for one that publishes. */
import { useState } from 'preact/hooks';
import type { Client } from '../../../../src/sdk/client.ts';
import type { Path } from '../../../../src/api/schemas/path.ts';
import { ApiErrorNote } from '../../app/api-error.tsx';
import { CliHint } from '../../app/cli-hint.tsx';
import { Field } from '../../app/field.tsx';
import { useAction } from '../use-action.ts';

interface Props {
  client: Client;
  services: readonly string[];
  onAdded(p: Path): void;
}

export function PathForm({ client, services, onAdded }: Props) {
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [ports, setPorts] = useState('');
  const [hostPort, setHostPort] = useState('');
  const add = useAction<Path>();
  const hp = hostPort.trim() === '' ? undefined : Number(hostPort);
  const submit = async (e: Event) => {
    e.preventDefault();
    const p = await add.run(() => client.call('createPath', { body: { from: from.trim(), to, ports: ports.trim(), ...(hp !== undefined ? { hostPort: hp } : {}) } }));
    if (p) onAdded(p);
  };
  const fields = ['from', 'to', 'ports', 'hostPort'];
  return (
    <form class="card path-form" onSubmit={submit} aria-label="Add a path">
      <h3>Add a path</h3>
      <div class="row">
        <Field label="From (service or CIDR)" name="from" error={add.error} hint="a service of the same network, or a CIDR: 0.0.0.0/0 is the internet">
          <input list="path-from-services" value={from} onInput={(e) => setFrom(e.currentTarget.value)} required autocomplete="off" />
        </Field>
        <datalist id="path-from-services">
          {services.map((s) => (
            <option key={s} value={s} />
          ))}
          <option value="0.0.0.0/0" />
        </datalist>
        <Field label="To (service)" name="to" error={add.error}>
          <select value={to} onChange={(e) => setTo(e.currentTarget.value)} required>
            <option value="">choose…</option>
            {services.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Ports" name="ports" error={add.error} hint="80, 8000-8100, 53/udp">
          <input value={ports} onInput={(e) => setPorts(e.currentTarget.value)} required autocomplete="off" />
        </Field>
        <Field label="Host port (publishing paths)" name="hostPort" error={add.error} hint="from a CIDR beyond the network: the first port on every node">
          <input inputMode="numeric" value={hostPort} onInput={(e) => setHostPort(e.currentTarget.value)} autocomplete="off" />
        </Field>
      </div>
      <button type="submit" class="primary" disabled={add.busy}>
        {add.busy ? 'Adding…' : 'Add path'}
      </button>
      <ApiErrorNote error={add.error} fields={fields} />
      {add.result ? (
        <p class="ok" role="status">
          path {add.result.id} added: {add.result.text}
        </p>
      ) : null}
      <CliHint args={['path', 'add', from.trim() || 'FROM', to || 'TO', ports.trim() || 'PORT', ...(hostPort.trim() ? ['--host-port', hostPort.trim()] : [])]} />
    </form>
  );
}
