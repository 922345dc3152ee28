/** `butter network ...`: private networks (one LAN per network, across every machine). */
import type { Command } from 'commander';
import type { Network } from '../../api/schemas/network.ts';
import { client } from '../config.ts';
import { age, printFields, printJson, printTable } from '../output.ts';

function showNetwork(n: Network): void {
  printFields([
    ['name', n.name],
    ['cidr', n.cidr],
    ['gateway', n.gateway],
    ['mtu', n.mtu],
    ['nat', n.nat ? 'yes' : 'no'],
    ['vms', n.vmCount],
    ['created', n.createdAt],
  ]);
}

export function networkCommands(program: Command): void {
  const network = program.command('network').description('private networks');

  network
    .command('create <name>')
    .description('create a private network; its VMs share one LAN wherever they run')
    .option('--cidr <cidr>', 'its addresses, e.g. 10.20.0.0/16 (default: the first free 10.x.0.0/16)')
    .option('--no-nat', 'no egress: its VMs reach only each other (and VPN peers)')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { cidr?: string; nat: boolean; json?: boolean }) => {
      const n = await client().call('createNetwork', { body: { name, ...(o.cidr ? { cidr: o.cidr } : {}), nat: o.nat } });
      if (o.json) return printJson(n);
      process.stdout.write(`network ${n.name} created: ${n.cidr}, gateway ${n.gateway}, MTU ${n.mtu}${n.nat ? '' : ', no NAT'}\n`);
    });

  network
    .command('list')
    .description('list private networks')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { items } = await client().call('listNetworks', {});
      if (o.json) return printJson(items);
      printTable(['NAME', 'CIDR', 'GATEWAY', 'MTU', 'NAT', 'VMS', 'AGE'], items.map((n) => [n.name, n.cidr, n.gateway, n.mtu, n.nat ? 'yes' : 'no', n.vmCount, age(n.createdAt)]));
    });

  network
    .command('show <name>')
    .description('show a private network')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const n = await client().call('getNetwork', { params: { name } });
      if (o.json) printJson(n);
      else showNetwork(n);
    });

  network
    .command('rm <name>')
    .description('remove a private network (refused while VMs are attached)')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      await client().call('deleteNetwork', { params: { name } });
      if (o.json) printJson({ name, deleted: true });
      else process.stdout.write(`network ${name} removed\n`);
    });
}
