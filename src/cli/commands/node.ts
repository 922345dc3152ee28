/** `butter node ...` and `butter login`. */
import type { Command } from 'commander';
import { Client } from '../../sdk/client.ts';
import { client, saveConfig, UsageError } from '../config.ts';
import { age, printFields, printJson, printTable, size } from '../output.ts';

export function nodeCommands(program: Command): void {
  const node = program.command('node').description('nodes (machines running butter agent)');

  node
    .command('list')
    .description('list nodes with capacity, allocation and VM count')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { items } = await client().call('listNodes', {});
      if (o.json) return printJson(items);
      printTable(
        ['NAME', 'STATE', 'ACCEL', 'CPUS', 'MEMORY', 'MEM USED', 'DISK', 'VMS', 'HEARTBEAT'],
        items.map((n) => [n.name, n.state, n.accel, n.capacity?.cpus, size(n.capacity?.memoryBytes), size(n.allocated.memoryBytes), size(n.capacity?.diskBytes), n.vmCount, age(n.lastHeartbeatAt)]),
      );
    });

  node
    .command('show <name>')
    .description('show a node')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const n = await client().call('getNode', { params: { name } });
      if (o.json) return printJson(n);
      printFields([
        ['name', n.name],
        ['state', n.state],
        ['driver', n.driver],
        ['accel', n.accelReason ? `${n.accel} (${n.accelReason})` : n.accel],
        ['cpus', n.capacity ? `${n.allocated.cpus} allocated / ${n.capacity.cpus}` : null],
        ['memory', n.capacity ? `${size(n.allocated.memoryBytes)} allocated / ${size(n.capacity.memoryBytes)}` : null],
        ['disk', n.capacity ? `${size(n.allocated.diskBytes)} allocated / ${size(n.capacity.diskBytes)}` : null],
        ['vms', n.vmCount],
        ['heartbeat', n.lastHeartbeatAt],
        ['created', n.createdAt],
      ]);
    });

  program
    .command('login <url>')
    .description('save the control plane URL and a token for later commands')
    .requiredOption('--token <token>', 'an admin or viewer token (see DATA_DIR/admin.token)')
    .option('--json', 'print JSON')
    .action(async (url: string, o: { token: string; json?: boolean }) => {
      if (!/^https?:\/\//.test(url)) throw new UsageError('url: must start with http:// or https://');
      const who = await new Client({ url, token: o.token }).call('whoami', {});
      const file = saveConfig({ url, token: o.token });
      if (o.json) return printJson({ url, role: who.role, config: file });
      process.stdout.write(`logged in to ${url} as ${who.role}; saved in ${file}\n`);
    });
}
