/** `butter vm ...`: everything about virtual machines. */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { RestartPolicy, type Vm } from '../../api/schemas/vm.ts';
import type { Client } from '../../sdk/client.ts';
import { client, UsageError } from '../config.ts';
import { isImageBuilding, waitForImage } from '../image-wait.ts';
import { snapshotCommands } from './snapshot.ts';
import { age, printFields, printJson, printTable, progress, progressDone, size } from '../output.ts';

interface JsonOpt {
  json?: boolean;
}

function readFileArg(path: string, field: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`${field}: cannot read ${path}: ${(e as Error).message}`);
  }
}

function showVm(vm: Vm): void {
  printFields([
    ['name', vm.name],
    ['id', vm.id],
    ['state', vm.reason ? `${vm.state} (${vm.reason})` : vm.state],
    ['power', vm.power],
    ['node', vm.node],
    ['image', vm.image],
    ['cpus', vm.cpus],
    ['memory', size(vm.memoryBytes)],
    ['disk', `${size(vm.diskBytes)} (vda)`],
    ...vm.disks.map((d): [string, string] => [`data disk ${d.index}`, `${size(d.sizeBytes)} (${d.device})`]),
    ...vm.nics.map((n, i): [string, string] => [`eth${i}`, `${n.network} ${n.ip ?? '-'} ${n.mac}`]),
    ['released', vm.released ? 'its cpus and memory are not held on its node while suspended' : null],
    ['pending', vm.pending ? `${vm.pending.cpus} cpu, ${size(vm.pending.memoryBytes)} at next start` : null],
    ['service', vm.service],
    ['spread', vm.spreadKey],
    ['metadata tokens', vm.metadataTokens],
    ['restart', vm.restart],
    ['idle stop', vm.idleStop ? `after ${vm.idleStop} without traffic (suspended, woken by the next connection)` : null],
    ['start', vm.startReason ? `${vm.start} (${vm.startReason})` : vm.start],
    ['warning', vm.warning],
    ['created', vm.createdAt],
  ]);
}

/** Polls until the VM reaches one of `states`; an `error` state ends the wait with its reason. */
export async function waitForState(c: Client, name: string, states: string[], timeoutS: number): Promise<Vm> {
  const end = Date.now() + timeoutS * 1000;
  let last = '';
  for (;;) {
    const vm = await c.call('getVm', { params: { name } });
    if (vm.state !== last) progress(`${name}: ${vm.state}${vm.reason ? ` (${vm.reason})` : ''}`);
    last = vm.state;
    if (states.includes(vm.state)) {
      progressDone();
      return vm;
    }
    if (vm.state === 'error') {
      progressDone();
      throw new Error(`vm ${name} failed: ${vm.reason ?? 'unknown reason'}`);
    }
    if (Date.now() > end) {
      progressDone();
      throw new Error(`timed out after ${timeoutS}s waiting for vm ${name} to be ${states.join(' or ')} (it is ${vm.state})`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function waitGone(c: Client, name: string, timeoutS: number): Promise<void> {
  const end = Date.now() + timeoutS * 1000;
  for (;;) {
    const found = (await c.call('listVms', {})).items.some((v) => v.name === name);
    if (!found) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutS}s waiting for vm ${name} to be deleted`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function intArg(v: string, field: string): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`${field}: must be a whole number, got ${JSON.stringify(v)}`);
  return Number(v);
}

export function vmCommands(program: Command): void {
  const vm = program.command('vm').description('virtual machines');
  snapshotCommands(vm);

  vm.command('list')
    .description('list VMs')
    .option('--json', 'print JSON')
    .action(async (o: JsonOpt) => {
      const { items } = await client().call('listVms', {});
      if (o.json) return printJson(items);
      printTable(
        ['NAME', 'STATE', 'NODE', 'IMAGE', 'CPUS', 'MEMORY', 'IP', 'SERVICE', 'AGE'],
        items.map((v) => [v.name, v.state, v.node, v.image, v.cpus, size(v.memoryBytes), v.ip, v.service, age(v.createdAt)]),
      );
    });

  vm.command('create <name>')
    .description('create a VM and start it')
    .requiredOption('--image <image>', 'image name')
    .option('--cpus <n>', 'virtual CPUs', '1')
    .option('--memory <size>', 'memory, e.g. 512M or 1G', '512M')
    .option('--disk <size>', 'disk, e.g. 10G', '2G')
    .option('--data-disk <size>', 'an empty data disk, e.g. 10G: the first is the guest\'s vdb, the next vdc... (repeatable, up to 8; kept across restarts, lost on drain/evacuate like the root disk)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--network <network>', 'a private network for its next NIC: the first is eth0, a second eth1... (repeatable; default: default)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--node <node>', 'place on this node')
    .option('--group <group>', 'place in this host group')
    .option('--zone <zone>', 'place in this zone')
    .option('--label <key=value>', 'place on a node with this label (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--policy <policy>', 'spread (default) or binpack')
    .option('--spread <key>', 'anti-affinity: VMs sharing the key spread across zones and nodes')
    .option('--force', 'place beyond the overcommit ratios (flagged as a warning)')
    .option('--user-data <file>', 'cloud-init user-data (a script or #cloud-config)')
    .option('--ssh-key <file>', 'an OpenSSH public key file (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--metadata-tokens <mode>', 'EC2-style metadata paths: optional (default; tokenless GETs too) or required (IMDSv2 tokens only; NoCloud still answers plain GETs)')
    .option('--restart <policy>', 'when it ends by itself: on-failure (default; after QEMU was killed or crashed, not after a guest poweroff), always, or never; with backoff, and stopped after 5 restarts in 10 min')
    .option('--idle-stop <duration>', 'scale to zero: after this long without traffic (e.g. 30s, 10m, 2h) its node suspends it; the next TCP connection or UDP datagram to it wakes it')
    .option('--wait', 'return once the guest has fetched its metadata')
    .option('--timeout <seconds>', 'how long --wait waits', '300')
    .option('--idempotency-key <key>', 'the same command run again with the same key (within 24 h) prints the VM it made instead of failing on the name (default: a new key, reused only by the client\'s own retries)')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { image: string; cpus: string; memory: string; disk: string; dataDisk: string[]; network: string[]; node?: string; group?: string; zone?: string; label: string[]; policy?: string; spread?: string; force?: boolean; userData?: string; sshKey: string[]; metadataTokens?: string; restart?: string; idleStop?: string; wait?: boolean; timeout: string; idempotencyKey?: string; json?: boolean }) => {
      const c = client();
      const labels: Record<string, string> = {};
      for (const l of o.label) {
        const m = /^([^=]+)=(.*)$/.exec(l);
        if (!m) throw new UsageError(`label: expected key=value, got ${JSON.stringify(l)}`);
        labels[m[1]!] = m[2]!;
      }
      if (o.policy !== undefined && o.policy !== 'spread' && o.policy !== 'binpack') throw new UsageError(`policy: must be spread or binpack, got ${JSON.stringify(o.policy)}`);
      if (o.metadataTokens !== undefined && o.metadataTokens !== 'optional' && o.metadataTokens !== 'required') throw new UsageError(`metadata-tokens: must be optional or required, got ${JSON.stringify(o.metadataTokens)}`);
      if (o.restart !== undefined && !(RestartPolicy.options as readonly string[]).includes(o.restart)) throw new UsageError(`restart: must be ${RestartPolicy.options.join(', ')}, got ${JSON.stringify(o.restart)}`);
      const sshKeys = o.sshKey.flatMap((f) => readFileArg(f, 'ssh-key').split('\n').map((l) => l.trim()).filter(Boolean));
      const body = {
        name,
        image: o.image,
        cpus: intArg(o.cpus, 'cpus'),
        memory: o.memory,
        disk: o.disk,
        ...(o.dataDisk.length ? { disks: o.dataDisk.map((size) => ({ size })) } : {}),
        ...(o.network.length > 1 ? { networks: o.network } : { network: o.network[0] ?? 'default' }),
        ...(o.node ? { node: o.node } : {}),
        ...(o.group ? { group: o.group } : {}),
        ...(o.zone ? { zone: o.zone } : {}),
        ...(o.label.length ? { labels } : {}),
        ...(o.policy ? { policy: o.policy as 'spread' | 'binpack' } : {}),
        ...(o.spread ? { spreadKey: o.spread } : {}),
        ...(o.force ? { force: true } : {}),
        ...(o.userData ? { userData: readFileArg(o.userData, 'user-data') } : {}),
        ...(sshKeys.length ? { sshKeys } : {}),
        ...(o.metadataTokens ? { metadataTokens: o.metadataTokens as 'optional' | 'required' } : {}),
        ...(o.restart ? { restart: o.restart as RestartPolicy } : {}),
        ...(o.idleStop !== undefined ? { idleStop: o.idleStop } : {}),
      };
      // One key for both tries: the second is the same request, after the image is there.
      const keyed = { body, ...(o.idempotencyKey !== undefined ? { idempotencyKey: o.idempotencyKey } : {}) };
      let created;
      try {
        created = await c.call('createVm', keyed);
      } catch (e) {
        // Right after `butter up` starts, its tiny image may still be being built: wait for it.
        if (!isImageBuilding(e)) throw e;
        await waitForImage(c, o.image);
        created = await c.call('createVm', keyed);
      }
      if (created.warning) process.stderr.write(`warning: ${created.warning}\n`);
      if (o.wait) created = await waitForState(c, name, ['running'], intArg(o.timeout, 'timeout'));
      if (o.json) return printJson(created);
      process.stdout.write(`vm ${created.name} ${o.wait ? 'is running' : 'created'} on ${created.node} at ${created.ip}\n`);
    });

  vm.command('show <name>')
    .description('show a VM')
    .option('--json', 'print JSON')
    .action(async (name: string, o: JsonOpt) => {
      const v = await client().call('getVm', { params: { name } });
      if (o.json) printJson(v);
      else showVm(v);
    });

  vm.command('ip <name>')
    .description("print a VM's address")
    .option('--json', 'print JSON')
    .action(async (name: string, o: JsonOpt) => {
      const v = await client().call('getVm', { params: { name } });
      if (o.json) printJson({ name: v.name, ip: v.ip, network: v.network });
      else process.stdout.write(`${v.ip ?? ''}\n`);
    });

  vm.command('rm <name>')
    .description('delete a VM and its disk')
    .option('--no-wait', 'return before the node has removed it')
    .option('--force', 'forget it now, without its node: only while the node is unreachable (the node destroys its copy if it returns)')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { wait: boolean; force?: boolean; json?: boolean }) => {
      const c = client();
      const v = await c.call('deleteVm', { params: { name }, ...(o.force ? { query: { force: 'true' as const } } : {}) });
      // A node that is not reporting never confirms: say so rather than wait for it.
      const lost = !o.force && v.node !== null && (await c.call('getNode', { params: { name: v.node } }).catch(() => undefined))?.state !== 'ready';
      if (lost) process.stderr.write(`node ${v.node} is not reachable: vm ${name} goes when it returns; \`butter vm rm --force ${name}\` forgets it now\n`);
      const wait = o.wait && !o.force && !lost;
      if (wait) await waitGone(c, name, 120);
      const gone = wait || o.force;
      if (o.json) printJson({ ...v, state: gone ? 'deleted' : v.state });
      else process.stdout.write(`vm ${name} ${gone ? 'deleted' : 'is being deleted'}${o.force ? ' (forced)' : ''}\n`);
    });

  for (const [verb, route, target, what] of [
    ['start', 'startVm', ['running'], 'start a VM (applies a pending resize)'],
    ['stop', 'stopVm', ['stopped'], 'stop a VM: ACPI shutdown, killed after a timeout'],
    ['restart', 'restartVm', ['running'], 'restart a VM (applies a pending resize)'],
  ] as const) {
    vm.command(`${verb} <name>`)
      .description(what)
      .option('--no-wait', 'return without waiting')
      .option('--timeout <seconds>', 'how long to wait', '300')
      .option('--json', 'print JSON')
      .action(async (name: string, o: { wait: boolean; timeout: string; json?: boolean }) => {
        const c = client();
        let v = await c.call(route, { params: { name } });
        if (o.wait) v = await waitForState(c, name, [...target], intArg(o.timeout, 'timeout'));
        if (o.json) printJson(v);
        else process.stdout.write(`vm ${name} ${o.wait ? `is ${v.state}` : `${verb} requested`}\n`);
      });
  }

  vm.command('suspend <name>')
    .description("save a running VM's RAM and device state on its node and end its QEMU; `vm resume` brings it back where it was")
    .option('--release', 'give its CPUs and memory back to the node meanwhile (a resume must then fit there again)')
    .option('--no-wait', 'return without waiting')
    .option('--timeout <seconds>', 'how long to wait', '300')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { release?: boolean; wait: boolean; timeout: string; json?: boolean }) => {
      const c = client();
      let v = await c.call('suspendVm', { params: { name }, body: o.release ? { release: true } : {} });
      if (o.wait) v = await waitForState(c, name, ['suspended'], intArg(o.timeout, 'timeout'));
      if (o.json) printJson(v);
      else process.stdout.write(`vm ${name} ${o.wait ? 'is suspended' : 'suspend requested'}${v.released ? ' (its cpus and memory released)' : ''}\n`);
    });

  vm.command('resume <name>')
    .description('bring a suspended VM back from its saved memory state: same disk, MAC and address, its processes going on')
    .option('--no-wait', 'return without waiting')
    .option('--timeout <seconds>', 'how long to wait', '300')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { wait: boolean; timeout: string; json?: boolean }) => {
      const c = client();
      let v = await c.call('resumeVm', { params: { name } });
      // A VM suspended while it booted goes on booting: either is "back".
      if (o.wait) v = await waitForState(c, name, ['running', 'booting'], intArg(o.timeout, 'timeout'));
      if (o.json) printJson(v);
      else process.stdout.write(`vm ${name} ${o.wait ? `is ${v.state}` : 'resume requested'}\n`);
    });

  vm.command('resize <name>')
    .description('change CPUs and memory; applied at the next start')
    .option('--cpus <n>', 'virtual CPUs')
    .option('--memory <size>', 'memory, e.g. 1G')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { cpus?: string; memory?: string; json?: boolean }) => {
      if (o.cpus === undefined && o.memory === undefined) throw new UsageError('give --cpus and/or --memory');
      const v = await client().call('resizeVm', {
        params: { name },
        body: { ...(o.cpus !== undefined ? { cpus: intArg(o.cpus, 'cpus') } : {}), ...(o.memory !== undefined ? { memory: o.memory } : {}) },
      });
      if (o.json) return printJson(v);
      const p = v.pending!;
      const running = v.power === 'running' && v.state !== 'stopped';
      process.stdout.write(`vm ${name} will have ${p.cpus} cpu and ${size(p.memoryBytes)} at its next start${running ? ' (run `butter vm restart ' + name + '`)' : ''}\n`);
    });

  vm.command('user-data <name>')
    .description("print a VM's user-data, or replace it with --set FILE or --edit")
    .option('--set <file>', 'replace with this file')
    .option('--edit', 'edit in $EDITOR')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { set?: string; edit?: boolean; json?: boolean }) => {
      const c = client();
      let next: string | undefined;
      if (o.set) next = readFileArg(o.set, 'set');
      else if (o.edit) {
        const current = (await c.call('getUserData', { params: { name } })).userData;
        const dir = mkdtempSync(join(tmpdir(), 'butter-ud-'));
        const file = join(dir, 'user-data');
        try {
          writeFileSync(file, current);
          const r = spawnSync(process.env.VISUAL ?? process.env.EDITOR ?? 'vi', [file], { stdio: 'inherit' });
          if (r.status !== 0) throw new Error('editor exited with an error; nothing changed');
          next = readFileSync(file, 'utf8');
          if (next === current) {
            process.stderr.write('no change\n');
            return;
          }
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }
      const out = next === undefined ? await c.call('getUserData', { params: { name } }) : await c.call('setUserData', { params: { name }, body: { userData: next } });
      if (o.json) printJson(out);
      else if (next === undefined) process.stdout.write(out.userData);
      else process.stdout.write(`user-data of ${name} replaced (${next.length} bytes); the guest sees it at its next metadata fetch\n`);
    });

  vm.command('logs <name>')
    .description("print a VM's serial console output")
    .option('-f, --follow', 'keep printing new output')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { follow?: boolean; json?: boolean }) => {
      const c = client();
      let offset = 0;
      for (;;) {
        const chunk = await c.call('vmLogs', { params: { name }, query: { offset, ...(o.follow ? { wait: 25 } : {}) } });
        if (o.json && !o.follow) return printJson(chunk);
        // The control plane keeps the newest output up to its cap: say what was skipped.
        if (chunk.start > offset && chunk.data) process.stderr.write(`[butter: ${chunk.start - offset} earlier bytes of console output were dropped]\n`);
        process.stdout.write(o.json ? JSON.stringify(chunk) + '\n' : chunk.data);
        const more = chunk.offset > offset;
        offset = chunk.offset;
        if (!o.follow && !more) return;
      }
    });

  vm.command('console <name>')
    .description("attach to a VM's serial console (Ctrl-] leaves)")
    .option('--lines-back <bytes>', 'how much earlier output to show first', '2048')
    .action(async (name: string, o: { linesBack: string }) => {
      const c = client();
      const end = await c.call('vmLogs', { params: { name }, query: { offset: Number.MAX_SAFE_INTEGER } });
      let offset = Math.max(0, end.offset - intArg(o.linesBack, 'lines-back'));
      let open = true;
      const tty = process.stdin.isTTY;
      process.stderr.write(`connected to the console of ${name}${tty ? '; Ctrl-] leaves' : ''}\n`);
      const finished = new Promise<void>((resolve) => {
        const leave = () => {
          open = false;
          if (tty) process.stdin.setRawMode(false);
          process.stdin.pause();
          resolve();
        };
        if (tty) process.stdin.setRawMode(true);
        process.stdin.on('data', (d: Buffer) => {
          const quit = d.indexOf(0x1d);
          const keys = quit >= 0 ? d.subarray(0, quit) : d;
          if (keys.length) void c.call('vmConsoleInput', { params: { name }, body: { base64: keys.toString('base64') } }).catch((e: Error) => process.stderr.write(`\r\nerror: ${e.message}\r\n`));
          if (quit >= 0) leave();
        });
        // Without a terminal (a script piping commands in), leave shortly after the input ends.
        process.stdin.on('end', () => setTimeout(leave, 3000));
      });
      const output = (async () => {
        while (open) {
          const chunk = await c.call('vmLogs', { params: { name }, query: { offset, wait: 1 } });
          process.stdout.write(chunk.data);
          offset = chunk.offset;
        }
      })();
      await finished;
      await output;
      process.stderr.write('\n');
    });
}
