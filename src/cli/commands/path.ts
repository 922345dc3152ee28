/**
 * `butter path ...`: who may reach a service's instances (default deny). `path check` exits
 * 0 when allowed and 3 when denied (1 stays an error, 2 a usage mistake), so a script can ask.
 */
import type { Command } from 'commander';
import type { Path, PathCheck } from '../../api/schemas/path.ts';
import { client, ExitWith, UsageError } from '../config.ts';
import { age, printJson, printTable } from '../output.ts';

interface JsonOpt {
  json?: boolean;
}

/** `path check`'s exit code when the answer is "denied". */
export const DENIED_EXIT = 3;

function hostPortArg(v: string): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`--host-port: must be a port number, got ${JSON.stringify(v)}`);
  return Number(v);
}

const hostPorts = (p: Path) => (p.hostPorts ? `${p.hostPorts[0] === p.hostPorts[1] ? p.hostPorts[0] : `${p.hostPorts[0]}-${p.hostPorts[1]}`}/${p.proto}` : null);

function checkText(a: PathCheck): string {
  const what = `${'service' in a.from ? a.from.service : a.from.cidr} -> ${a.to}:${a.port}/${a.proto}`;
  if (!a.allowed) return `denied: ${a.reason}`;
  // Several: each admits some of FROM (one may cover it alone, or they do together).
  const by = a.paths.length > 1 ? `paths ${a.paths.map((p) => `${p.id} (${p.text})`).join(', ')}` : `path ${a.path!.id} (${a.path!.text})`;
  return `allowed: ${what} by ${by}`;
}

export function pathCommands(program: Command): void {
  const path = program.command('path').description('paths: who may reach a service (everything else is denied)');

  path
    .command('add <from> <to> <port>')
    .description('let FROM (a service of the same network, or a CIDR; 0.0.0.0/0 is the internet) reach TO on PORT (80, 8000-8100, 53/udp); from a CIDR beyond the network it publishes TO on every node')
    .option('--network <network>', "the network (default: TO's)")
    .option('--host-port <port>', 'for a publishing path: the first host port on the nodes (default: PORT itself)')
    .option('--idempotency-key <key>', 'the same command run again with the same key (within 24 h) prints the path it made')
    .option('--json', 'print JSON')
    .action(async (from: string, to: string, port: string, o: JsonOpt & { network?: string; hostPort?: string; idempotencyKey?: string }) => {
      const body = { from, to, ports: port, ...(o.network !== undefined ? { network: o.network } : {}), ...(o.hostPort !== undefined ? { hostPort: hostPortArg(o.hostPort) } : {}) };
      const p = await client().call('createPath', { body, ...(o.idempotencyKey !== undefined ? { idempotencyKey: o.idempotencyKey } : {}) });
      if (o.json) return printJson(p);
      process.stdout.write(`path ${p.id} added: ${p.text} in ${p.network}${p.hostPorts ? `; published on every node at ${hostPorts(p)}` : ''}\n`);
    });

  path
    .command('rm <id-or-from> [to] [port]')
    .description('remove a path: by its id (path list), or by the same FROM TO PORT it was added with')
    .option('--network <network>', "the network (default: TO's)")
    .option('--json', 'print JSON')
    .action(async (a: string, to: string | undefined, port: string | undefined, o: JsonOpt & { network?: string }) => {
      if ((to === undefined) !== (port === undefined)) throw new UsageError('path rm takes an ID, or FROM TO PORT');
      const c = client();
      const p = to === undefined || port === undefined ? await c.call('deletePath', { params: { id: a } }) : await c.call('removePathMatching', { query: { from: a, to, ports: port, ...(o.network !== undefined ? { network: o.network } : {}) } });
      if (o.json) return printJson(p);
      process.stdout.write(`path ${p.id} removed: ${p.text}\n`);
    });

  path
    .command('list')
    .description('list paths')
    .option('--network <network>', 'only those of this network')
    .option('--service <service>', 'only those from or to this service')
    .option('--json', 'print JSON')
    .action(async (o: JsonOpt & { network?: string; service?: string }) => {
      const query = { ...(o.network !== undefined ? { network: o.network } : {}), ...(o.service !== undefined ? { service: o.service } : {}) };
      const { items } = await client().call('listPaths', { query });
      if (o.json) return printJson(items);
      printTable(
        ['ID', 'NETWORK', 'FROM', 'TO', 'PORTS', 'PUBLISHED', 'AGE'],
        items.map((p) => [p.id, p.network, 'service' in p.from ? p.from.service : p.from.cidr, p.to, `${p.ports[0] === p.ports[1] ? p.ports[0] : `${p.ports[0]}-${p.ports[1]}`}/${p.proto}`, hostPorts(p), age(p.createdAt)]),
      );
    });

  path
    .command('check <from> <to> [port]')
    .description(`may FROM reach TO on PORT? (--internet SERVICE PORT: may the internet?) Names the path that allows it; exits 0 when allowed, ${DENIED_EXIT} when denied`)
    .option('--internet', 'ask for the internet (0.0.0.0/0): path check --internet SERVICE PORT')
    .option('--json', 'print JSON')
    .action(async (a: string, b: string, c: string | undefined, o: JsonOpt & { internet?: boolean }) => {
      if (o.internet ? c !== undefined : c === undefined) throw new UsageError(o.internet ? 'path check --internet takes SERVICE PORT' : 'path check takes FROM TO PORT (or --internet SERVICE PORT)');
      const query = o.internet ? { internet: '1' as const, to: a, port: b } : { from: a, to: b, port: c! };
      const answer = await client().call('checkPath', { query });
      if (o.json) printJson(answer);
      else process.stdout.write(checkText(answer) + '\n');
      if (!answer.allowed) throw new ExitWith(DENIED_EXIT);
    });
}
