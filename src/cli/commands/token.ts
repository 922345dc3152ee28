/** `butter token ...`: admin, operator, viewer and metrics API tokens. */
import type { Command } from 'commander';
import { ISSUED_ROLES, type IssuedRole } from '../../api/schemas/token.ts';
import { client, UsageError } from '../config.ts';
import { age, printJson, printTable } from '../output.ts';

export function tokenCommands(program: Command): void {
  const token = program.command('token').description('API tokens (admin, operator, viewer, metrics)');

  token
    .command('create')
    .description('issue a token; its secret is printed once and never stored')
    .requiredOption('--role <role>', 'admin (everything), operator (VMs, networks, images; not nodes or tokens), viewer (reads, no secrets) or metrics (scrapes /metrics only)')
    .option('--description <text>', 'what it is for')
    .option('--json', 'print JSON')
    .action(async (o: { role: string; description?: string; json?: boolean }) => {
      if (!ISSUED_ROLES.includes(o.role as IssuedRole)) throw new UsageError(`role: must be admin, operator, viewer or metrics, got ${JSON.stringify(o.role)}`);
      const out = await client().call('createToken', { body: { role: o.role as IssuedRole, ...(o.description ? { description: o.description } : {}) } });
      if (o.json) return printJson(out);
      process.stdout.write(`${out.secret}\n`);
      process.stderr.write(`${out.token.role} token ${out.token.id} issued; this is the only time its secret is shown\n`);
    });

  token
    .command('list')
    .description('list tokens (never their secrets)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { items } = await client().call('listTokens', {});
      if (o.json) return printJson(items);
      printTable(['ID', 'ROLE', 'NODE', 'DESCRIPTION', 'AGE'], items.map((t) => [t.id, t.role, t.node, t.description, age(t.createdAt)]));
    });

  token
    .command('rm <id>')
    .description('revoke a token')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      await client().call('deleteToken', { params: { id } });
      if (o.json) printJson({ id, revoked: true });
      else process.stdout.write(`token ${id} revoked\n`);
    });
}
