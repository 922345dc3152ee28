/** Resize: new CPUs and/or memory, applied at the next start; the API's errors by their fields. */
import { useState } from 'preact/hooks';
import type { Vm } from '../../../../src/api/schemas/vm.ts';
import type { Client } from '../../../../src/sdk/client.ts';
import { ApiErrorNote } from '../../app/api-error.tsx';
import { CliHint } from '../../app/cli-hint.tsx';
import { Field } from '../../app/field.tsx';
import { formatSize } from '../../../../src/core/units.ts';
import { resizeWords } from './cli.ts';

export function VmResize({ client, vm, onChanged }: { client: Client; vm: Vm; onChanged: (vm: Vm) => void }) {
  const [cpus, setCpus] = useState(String(vm.pending?.cpus ?? vm.cpus));
  const [memory, setMemory] = useState(formatSize(vm.pending?.memoryBytes ?? vm.memoryBytes));
  const [error, setError] = useState<unknown>();
  const [done, setDone] = useState(false);
  const nextCpus = cpus.trim() && Number(cpus) !== vm.cpus ? Number(cpus) : undefined;
  const nextMemory = memory.trim() && memory.trim() !== formatSize(vm.memoryBytes) ? memory.trim() : undefined;
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setDone(false);
    try {
      onChanged(await client.call('resizeVm', { params: { name: vm.name }, body: { ...(nextCpus !== undefined ? { cpus: nextCpus } : {}), ...(nextMemory !== undefined ? { memory: nextMemory } : {}) } }));
      setDone(true);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form class="resize" onSubmit={submit} aria-labelledby="resize-h" noValidate>
      <h2 id="resize-h">Resize</h2>
      <div class="row">
        <Field label="CPUs" name="cpus" error={error}>
          <input type="number" min={1} max={64} value={cpus} onInput={(e) => setCpus(e.currentTarget.value)} />
        </Field>
        <Field label="Memory" name="memory" error={error} hint="e.g. 1G">
          <input value={memory} onInput={(e) => setMemory(e.currentTarget.value)} />
        </Field>
      </div>
      <ApiErrorNote error={error} fields={['cpus', 'memory']} />
      <div class="actions">
        <button type="submit">Resize</button>
        {done ? (
          <span class="muted" role="status">
            {vm.pending ? 'Applied at the next start.' : 'Resized.'}
          </span>
        ) : null}
      </div>
      <CliHint args={resizeWords(vm.name, nextCpus, nextMemory)} />
    </form>
  );
}
