/** The CLI lines of the VM page's actions: what the panel does, as `butter` would say it. */
import type { VmCreate } from '../../../../src/api/schemas/vm.ts';

type Words = (string | number | undefined | false)[];

/** `butter vm create …` for a create form's body (user-data and SSH keys are files there). */
export function createWords(b: Partial<VmCreate>): Words {
  const flag = (f: string, v: string | number | undefined) => (v === undefined || v === '' ? [] : [f, v]);
  return [
    'vm',
    'create',
    b.name || 'NAME',
    ...flag('--image', b.image || 'IMAGE'),
    ...flag('--cpus', b.cpus),
    ...flag('--memory', b.memory),
    ...flag('--disk', b.disk),
    ...(b.networks ?? (b.network ? [b.network] : [])).flatMap((n) => ['--network', n]),
    ...flag('--node', b.node),
    ...flag('--zone', b.zone),
    ...flag('--group', b.group),
    ...(b.userData ? ['--user-data', 'user-data.yaml'] : []),
    ...(b.sshKeys ?? []).flatMap((_k, i) => ['--ssh-key', `key${i + 1}.pub`]),
  ];
}

export const actionWords = (verb: 'start' | 'stop' | 'restart' | 'suspend' | 'resume' | 'rm', name: string): Words => ['vm', verb, name];
export const resizeWords = (name: string, cpus?: number, memory?: string): Words => ['vm', 'resize', name, ...(cpus ? ['--cpus', cpus] : []), ...(memory ? ['--memory', memory] : [])];
