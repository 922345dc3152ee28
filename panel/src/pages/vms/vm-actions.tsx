/**
 * Start, stop, restart, suspend, resume and delete, each with its CLI line; all but start and
 * resume ask first. Rendered only for an operator (the API refuses a viewer anyway).
 */
import { useState } from 'preact/hooks';
import type { Vm } from '../../../../src/api/schemas/vm.ts';
import type { Client } from '../../../../src/sdk/client.ts';
import { ApiErrorNote } from '../../app/api-error.tsx';
import { CliHint } from '../../app/cli-hint.tsx';
import { Confirm } from '../../app/confirm.tsx';
import { navigate } from '../../app/router.ts';
import { actionWords } from './cli.ts';

type Verb = 'start' | 'stop' | 'restart' | 'suspend' | 'resume' | 'rm';
/** The verbs that run at once, without a question. */
type Direct = 'start' | 'resume';
const CALL = { start: 'startVm', stop: 'stopVm', restart: 'restartVm', suspend: 'suspendVm', resume: 'resumeVm' } as const;
const ASK: Record<Exclude<Verb, Direct>, (n: string) => { title: string; text: string; action: string }> = {
  stop: (n) => ({ title: `Stop ${n}?`, text: 'The guest is asked to shut down (ACPI), then killed after a timeout.', action: `Stop ${n}` }),
  restart: (n) => ({ title: `Restart ${n}?`, text: 'The guest is stopped and started again.', action: `Restart ${n}` }),
  suspend: (n) => ({ title: `Suspend ${n}?`, text: 'Its memory is saved on its node and it stops; Resume brings it back where it was, its processes still running. Its CPUs and memory stay reserved.', action: `Suspend ${n}` }),
  rm: (n) => ({ title: `Delete ${n}?`, text: 'The VM and its disks are removed from its node. This cannot be undone.', action: `Delete ${n}` }),
};

export function VmActions({ client, vm, onChanged }: { client: Client; vm: Vm; onChanged: (vm: Vm) => void }) {
  const [asking, setAsking] = useState<Exclude<Verb, Direct> | undefined>();
  const [error, setError] = useState<unknown>();
  const [shown, setShown] = useState<Verb>(vm.power === 'running' ? 'stop' : 'start');
  const run = async (verb: Verb) => {
    setAsking(undefined);
    setError(undefined);
    const params = { name: vm.name };
    try {
      if (verb === 'rm') {
        await client.call('deleteVm', { params });
        navigate('vms');
        return;
      }
      onChanged(verb === 'suspend' ? await client.call('suspendVm', { params, body: {} }) : await client.call(CALL[verb], { params }));
    } catch (e) {
      setError(e);
    }
  };
  const button = (verb: Verb, label: string, cls = '') => (
    <button type="button" class={cls} onClick={() => (verb === 'start' || verb === 'resume' ? run(verb) : setAsking(verb))} onFocus={() => setShown(verb)} onMouseEnter={() => setShown(verb)}>
      {label}
    </button>
  );
  const ask = asking ? ASK[asking](vm.name) : undefined;
  return (
    <div>
      <div class="actions">
        {vm.power === 'suspended' ? button('resume', 'Resume', 'primary') : vm.power === 'stopped' ? button('start', 'Start', 'primary') : null}
        {vm.power !== 'stopped' ? button('stop', 'Stop') : null}
        {vm.power === 'running' ? button('restart', 'Restart') : null}
        {vm.power === 'running' ? button('suspend', 'Suspend') : null}
        {button('rm', 'Delete', 'danger')}
      </div>
      <CliHint args={actionWords(shown, vm.name)} />
      <ApiErrorNote error={error} />
      {ask && asking ? (
        <Confirm title={ask.title} action={ask.action} danger={asking === 'rm'} onConfirm={() => run(asking)} onCancel={() => setAsking(undefined)}>
          <p>{ask.text}</p>
          <CliHint args={actionWords(asking, vm.name)} />
        </Confirm>
      ) : null}
    </div>
  );
}
