/** `butter vm snapshot ...`, `vm reinit`, `vm clone`: disk snapshots of VMs (issue 16). */
import type { Command } from 'commander';
import type { Snapshot } from '../../api/schemas/snapshot.ts';
import type { Client } from '../../sdk/client.ts';
import { client, UsageError } from '../config.ts';
import { age, printJson, printTable, progress, progressDone, size } from '../output.ts';
import { waitForState } from './vm.ts';

interface WaitOpts {
  wait: boolean;
  timeout: string;
  json?: boolean;
}

function seconds(v: string): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`timeout: must be a whole number, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** Polls until the snapshot is ready; failed or lost ends the wait with its reason. */
async function waitReady(c: Client, vm: string, name: string, timeoutS: number): Promise<Snapshot> {
  const end = Date.now() + timeoutS * 1000;
  for (;;) {
    const s = (await c.call('listSnapshots', { params: { name: vm } })).items.find((x) => x.name === name);
    if (!s) throw new Error(`snapshot ${name} of vm ${vm} is gone`);
    if (s.state === 'ready') {
      progressDone();
      return s;
    }
    if (s.state !== 'pending') {
      progressDone();
      throw new Error(`snapshot ${name} of vm ${vm} is ${s.state}: ${s.reason ?? 'no reason given'}`);
    }
    progress(`${vm}/${name}: pending`);
    if (Date.now() > end) {
      progressDone();
      throw new Error(`timed out after ${timeoutS}s waiting for snapshot ${name} of vm ${vm}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * A subcommand's options with those its parent (`vm snapshot`, which has the same ones)
 * took from after it: commander hands an option to the first command on the line that knows it.
 */
function merged<T extends { json?: boolean; wait?: boolean; timeout?: string }>(o: T, cmd: Command): T {
  const parent = cmd.parent;
  if (!parent) return o;
  const from = (k: string) => parent.getOptionValueSource(k) === 'cli';
  const p = parent.opts() as { json?: boolean; wait?: boolean; timeout?: string };
  return {
    ...o,
    ...(from('json') ? { json: true } : {}),
    ...(from('wait') && p.wait === false ? { wait: false } : {}),
    ...(from('timeout') && p.timeout !== undefined ? { timeout: p.timeout } : {}),
  };
}

function listSnapshots(): (name: string, o: { json?: boolean }, cmd: Command) => Promise<void> {
  return async (name, opts, cmd) => {
    const o = merged(opts, cmd);
    const { items } = await client().call('listSnapshots', { params: { name } });
    if (o.json) return printJson(items);
    printTable(
      ['NAME', 'STATE', 'PARENT', 'CURRENT', 'PAUSE', 'SIZE', 'MEMORY', 'NODE', 'AGE'],
      items.map((s) => [
        s.name,
        s.reason ? `${s.state} (${s.reason})` : s.state,
        s.parent,
        s.current ? 'yes' : '',
        s.pauseMs !== null ? `${s.pauseMs} ms` : '',
        s.sizeBytes !== null ? size(s.sizeBytes) : '',
        s.memory ? (s.memoryBytes !== null ? size(s.memoryBytes) : 'yes') : '',
        s.node,
        age(s.createdAt),
      ]),
    );
  };
}

export function snapshotCommands(vm: Command): void {
  const snap = vm
    .command('snapshot')
    .description("crash-consistent snapshots of a VM's root disk: `vm snapshot NAME` takes one (a running VM is paused for it), `list`, `restore`, `rm`")
    .argument('[name]', 'the VM to snapshot')
    .option('--name <snapshot>', 'its name (default: snap-N)')
    .option('--memory', "also save the guest's RAM and device state (a running VM only; it runs on after it): a restore resumes it where it was")
    .option('--no-wait', 'return before its node has taken it')
    .option('--timeout <seconds>', 'how long to wait', '120')
    .option('--json', 'print JSON')
    .action(async (name: string | undefined, o: WaitOpts & { name?: string; memory?: boolean }) => {
      if (name === undefined) throw new UsageError('give the VM to snapshot: butter vm snapshot NAME [--name S] [--memory]');
      const c = client();
      let s = await c.call('createSnapshot', { params: { name }, body: { ...(o.name !== undefined ? { name: o.name } : {}), ...(o.memory ? { memory: true } : {}) } });
      if (o.wait) s = await waitReady(c, name, s.name, seconds(o.timeout));
      if (o.json) return printJson(s);
      const memory = s.memoryBytes !== null ? `, ${size(s.memoryBytes)} of memory state` : '';
      process.stdout.write(o.wait ? `${s.memory ? 'memory ' : ''}snapshot ${s.name} of vm ${name} is ready${s.pauseMs !== null ? ` (guest paused ${s.pauseMs} ms${memory})` : ''}\n` : `snapshot ${s.name} of vm ${name} requested\n`);
    });

  snap.command('list <name>').description("a VM's snapshots, oldest first").option('--json', 'print JSON').action(listSnapshots());
  vm.command('snapshots <name>').description("a VM's snapshots (as `vm snapshot list`)").option('--json', 'print JSON').action(listSnapshots());

  snap
    .command('restore <name> <snapshot>')
    .description('restart a VM from a snapshot: what its root disk got since is discarded')
    .option('--no-wait', 'return without waiting for it to run')
    .option('--timeout <seconds>', 'how long to wait', '300')
    .option('--json', 'print JSON')
    .action(async (name: string, snapshot: string, opts: WaitOpts, cmd: Command) => {
      const o = merged(opts, cmd);
      const c = client();
      let v = await c.call('restoreSnapshot', { params: { name, snap: snapshot } });
      if (o.wait) v = await waitForState(c, name, ['running'], seconds(o.timeout));
      if (o.json) return printJson(v);
      process.stdout.write(`vm ${name} ${o.wait ? 'is running' : 'restarts'} from snapshot ${snapshot}\n`);
    });

  snap
    .command('rm <name> <snapshot>')
    .description("delete a snapshot (refused for `initial` and while the VM's disk, another snapshot or a clone stands on it)")
    .option('--json', 'print JSON')
    .action(async (name: string, snapshot: string, opts: { json?: boolean }, cmd: Command) => {
      const o = merged(opts, cmd);
      await client().call('deleteSnapshot', { params: { name, snap: snapshot } });
      if (o.json) return printJson({ vm: name, snapshot, deleted: true });
      process.stdout.write(`snapshot ${snapshot} of vm ${name} deleted\n`);
    });

  vm.command('reinit <name>')
    .description('restart a VM from its `initial` snapshot: its root disk as at its first boot')
    .option('--no-wait', 'return without waiting for it to run')
    .option('--timeout <seconds>', 'how long to wait', '300')
    .option('--json', 'print JSON')
    .action(async (name: string, o: WaitOpts) => {
      const c = client();
      let v = await c.call('reinitVm', { params: { name } });
      if (o.wait) v = await waitForState(c, name, ['running'], seconds(o.timeout));
      if (o.json) return printJson(v);
      process.stdout.write(`vm ${name} ${o.wait ? 'is running' : 'restarts'} from its initial snapshot\n`);
    });

  vm.command('clone <src> <new>')
    .description("a new VM (its own name, MAC, address, instance-id) whose root disk starts from a snapshot of SRC, on the snapshot's node (or --node)")
    .option('--snapshot <snapshot>', 'the snapshot of SRC (default: one taken now, clone-NEW)')
    .option('--node <node>', "default: the snapshot's node; another node gets a full copy of the snapshot first (the clone then stands on that copy)")
    .option('--no-wait', 'return without waiting for it to run')
    .option('--timeout <seconds>', 'how long to wait', '300')
    .option('--json', 'print JSON')
    .action(async (src: string, name: string, o: WaitOpts & { snapshot?: string; node?: string }) => {
      const c = client();
      let v = await c.call('cloneVm', { params: { name: src }, body: { name, ...(o.snapshot !== undefined ? { snapshot: o.snapshot } : {}), ...(o.node !== undefined ? { node: o.node } : {}) } });
      if (o.wait) v = await waitForState(c, name, ['running'], seconds(o.timeout));
      if (o.json) return printJson(v);
      process.stdout.write(`vm ${name} (${v.ip ?? 'no address'}) cloned from vm ${src}${o.wait ? ', running' : ''}\n`);
    });
}
