/** `butter service ...`: groups of VMs from a blueprint, with rolling updates and rollback. */
import type { Command } from 'commander';
import type { Service } from '../../api/schemas/service.ts';
import type { Client } from '../../sdk/client.ts';
import { loadBundle, parseVars } from '../blueprint-bundle.ts';
import { client, UsageError } from '../config.ts';
import { age, printFields, printJson, printTable, progress, progressDone } from '../output.ts';

interface JsonOpt {
  json?: boolean;
}

const collect = (v: string, acc: string[]) => [...acc, v];

function intArg(v: string, field: string): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`${field}: must be a whole number, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** The blueprint with its templates (read relative to it) and the variables, as the API takes them. */
function content(o: { blueprint: string; var: string[]; varsFile?: string }): { blueprint: string; file: string; files: Record<string, string>; vars: Record<string, unknown> } {
  let bundle, vars;
  try {
    bundle = loadBundle(o.blueprint);
    vars = parseVars(o.var, o.varsFile);
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  return { blueprint: bundle.blueprint, file: bundle.file, files: bundle.files, vars };
}

const rolloutText = (s: Service) => (s.rollout.state === 'rolling' ? `rolling to ${s.targetRevision}` : s.rollout.state === 'failed' ? `failed (${s.rollout.message})` : 'done');

function showService(s: Service): void {
  printFields([
    ['name', s.name],
    ['network', s.network],
    ['dns name', s.dnsName],
    ['block', s.block],
    ['state', s.state],
    ['instances', instancesText(s)],
    ['zones', s.zones],
    ['image', s.image],
    ['revision', s.revision],
    ['rollout', s.rollout.state === 'done' ? (s.rollout.message ?? 'done') : s.rollout.state === 'rolling' ? `rolling to revision ${s.targetRevision}` : s.rollout.message],
    ...s.warnings.map((w): [string, string] => ['warning', w]),
    ['created', s.createdAt],
  ]);
  process.stdout.write('\n');
  printTable(
    ['INSTANCE', 'STATE', 'NODE', 'ZONE', 'IP', 'REVISION'],
    s.instances.map((i) => [i.name, i.reason ? `${i.state} (${i.reason})` : i.state, i.node, i.zone, i.ip, i.revision]),
  );
  if (s.published.length > 0) {
    const range = ([lo, hi]: readonly [number, number]) => (lo === hi ? `${lo}` : `${lo}-${hi}`);
    process.stdout.write('\n');
    printTable(
      ['PUBLISHED', 'TO PORTS', 'FROM', 'ON'],
      s.published.map((e) => [`${range(e.hostPorts)}/${e.proto}`, range(e.ports), e.sources.join(','), e.nodes.map((n) => (n.address ? `${n.address} (${n.node})` : n.node)).join(', ')]),
    );
  }
  process.stdout.write(`\nblueprint (revision ${s.targetRevision}):\n${s.blueprint.replace(/^\n+/, '').replace(/\s*$/, '')}\n`);
}

/**
 * Polls until every instance runs and the rollout is done; a failed rollout, a failed instance
 * or the deadline ends the wait with an error naming it (the command then exits non-zero).
 */
async function waitSettled(c: Client, name: string, timeoutS: number): Promise<Service> {
  const end = Date.now() + timeoutS * 1000;
  let last = '';
  for (;;) {
    const s = await c.call('getService', { params: { name } });
    const running = s.instances.filter((i) => i.state === 'running').length;
    const line = `${name}: ${running}/${s.count} running, rollout ${rolloutText(s)}`;
    if (line !== last) progress(line);
    last = line;
    if (s.rollout.state === 'failed') {
      progressDone();
      throw new Error(`service ${name}: rollout to revision ${s.targetRevision} ${s.rollout.message ?? 'failed'}`);
    }
    const broken = s.rollout.state === 'done' ? s.instances.find((i) => i.state === 'error') : undefined;
    if (broken) {
      progressDone();
      throw new Error(`service ${name}: instance ${broken.name} failed: ${broken.reason ?? 'unknown reason'}`);
    }
    if (s.rollout.state === 'done' && s.instances.length === s.count && running === s.count) {
      progressDone();
      return s;
    }
    if (Date.now() > end) {
      progressDone();
      throw new Error(`timed out after ${timeoutS}s waiting for service ${name} (${line})`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

function done(s: Service, o: JsonOpt, what: string): void {
  for (const w of s.warnings) process.stderr.write(`warning: ${w}\n`);
  if (o.json) return printJson(s);
  process.stdout.write(`${what}\n`);
}

export function serviceCommands(program: Command): void {
  const svc = program.command('service').description('services: groups of VMs from a blueprint, with rolling updates');

  svc
    .command('create <network> <name>')
    .description('create a service from a blueprint (its templates are read relative to it)')
    .requiredOption('--blueprint <file>', 'the blueprint (YAML)')
    .option('--var <key=value>', 'a template variable; the value is YAML, so [a,b] is a list (repeatable)', collect, [] as string[])
    .option('--vars-file <file>', 'template variables from a YAML map (--var wins)')
    .option('--count <n>', "instances (default: the blueprint's count, else placement.availability_zones)")
    .option('--force', 'place even with fewer zones than placement.availability_zones (recorded as a warning)')
    .option('--wait', 'return once every instance is running')
    .option('--timeout <seconds>', 'how long --wait waits', '600')
    .option('--idempotency-key <key>', 'the same command run again with the same key (within 24 h) prints the service it made')
    .option('--json', 'print JSON')
    .action(async (network: string, name: string, o: { blueprint: string; var: string[]; varsFile?: string; count?: string; force?: boolean; wait?: boolean; timeout: string; idempotencyKey?: string; json?: boolean }) => {
      const c = client();
      const body = { network, name, ...content(o), ...(o.count !== undefined ? { count: intArg(o.count, 'count') } : {}), ...(o.force ? { force: true } : {}) };
      let s = await c.call('createService', { body, ...(o.idempotencyKey !== undefined ? { idempotencyKey: o.idempotencyKey } : {}) });
      if (o.wait) s = await waitSettled(c, name, intArg(o.timeout, 'timeout'));
      done(s, o, `service ${s.name} ${o.wait ? 'is running' : 'created'}: ${s.count} instance(s) in ${s.network} (${s.block}), ${s.dnsName}`);
    });

  svc
    .command('list')
    .description('list services')
    .option('--network <network>', 'only those of this network')
    .option('--json', 'print JSON')
    .action(async (o: JsonOpt & { network?: string }) => {
      const { items } = await client().call('listServices', { query: o.network ? { network: o.network } : {} });
      if (o.json) return printJson(items);
      printTable(
        ['NAME', 'NETWORK', 'BLOCK', 'RUNNING', 'REVISION', 'ROLLOUT', 'AGE'],
        items.map((s) => [s.name, s.network, s.block, instancesText(s, true), s.revision, s.state === 'deleting' ? 'deleting' : rolloutText(s), age(s.createdAt)]),
      );
    });

  svc
    .command('show <name>')
    .description('show a service: instances, blueprint, warnings, rollout')
    .option('--json', 'print JSON')
    .action(async (name: string, o: JsonOpt) => {
      const s = await client().call('getService', { params: { name } });
      if (o.json) printJson(s);
      else showService(s);
    });

  svc
    .command('scale <name> <count>')
    .description('set the number of instances (new ones keep the spread; the newest go first)')
    .option('--wait', 'return once every instance is running')
    .option('--timeout <seconds>', 'how long --wait waits', '600')
    .option('--json', 'print JSON')
    .action(async (name: string, count: string, o: JsonOpt & { wait?: boolean; timeout: string }) => {
      const c = client();
      let s = await c.call('scaleService', { params: { name }, body: { count: intArg(count, 'count') } });
      if (o.wait) s = await waitSettled(c, name, intArg(o.timeout, 'timeout'));
      done(s, o, `service ${name} scaled to ${s.count}`);
    });

  svc
    .command('rm <name>')
    .description('delete a service: its instances, then itself')
    .option('--json', 'print JSON')
    .action(async (name: string, o: JsonOpt) => {
      const s = await client().call('deleteService', { params: { name } });
      done(s, o, `service ${name} is being deleted (${s.instances.length} instance(s))`);
    });

  svc
    .command('update <name>')
    .description('roll the instances to a new revision, one at a time (the same blueprint, variables and image: nothing happens)')
    .requiredOption('--blueprint <file>', 'the blueprint (YAML)')
    .option('--var <key=value>', 'a template variable (repeatable)', collect, [] as string[])
    .option('--vars-file <file>', 'template variables from a YAML map (--var wins)')
    .option('--wait', 'return once the rollout is done; exit non-zero naming the instance if it fails')
    .option('--timeout <seconds>', 'how long --wait waits', '1800')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { blueprint: string; var: string[]; varsFile?: string; wait?: boolean; timeout: string; json?: boolean }) => {
      const c = client();
      const before = await c.call('getService', { params: { name } });
      let s = await c.call('updateService', { params: { name }, body: content(o) });
      const same = s.targetRevision === before.targetRevision && s.rollout.state === before.rollout.state;
      if (o.wait) s = await waitSettled(c, name, intArg(o.timeout, 'timeout'));
      done(s, o, same ? `service ${name}: nothing changed (revision ${s.targetRevision} is the same)` : `service ${name} ${o.wait ? 'rolled' : 'rolling'} to revision ${s.targetRevision}`);
    });

  svc
    .command('rollback <name>')
    .description('roll back to an earlier revision (default: the one before), one instance at a time')
    .option('--to <revision>', 'the revision to roll back to')
    .option('--wait', 'return once the rollout is done')
    .option('--timeout <seconds>', 'how long --wait waits', '1800')
    .option('--json', 'print JSON')
    .action(async (name: string, o: JsonOpt & { to?: string; wait?: boolean; timeout: string }) => {
      const c = client();
      let s = await c.call('rollbackService', { params: { name }, body: o.to !== undefined ? { to: intArg(o.to, 'to') } : {} });
      if (o.wait) s = await waitSettled(c, name, intArg(o.timeout, 'timeout'));
      done(s, o, `service ${name} ${o.wait ? 'rolled back' : 'rolling back'} to revision ${s.targetRevision}`);
    });

  svc
    .command('history <name>')
    .description("a service's revisions, newest first")
    .option('--json', 'print JSON')
    .action(async (name: string, o: JsonOpt) => {
      const { items } = await client().call('listServiceRevisions', { params: { name } });
      if (o.json) return printJson(items);
      printTable(
        ['REVISION', '', 'IMAGE', 'DIGEST', 'VARS', 'CREATED'],
        items.map((r) => [r.number, r.current ? 'current' : r.target ? 'target' : '', r.image, r.imageDigest.slice(0, 12), JSON.stringify(r.vars), age(r.createdAt)]),
      );
    });
}

/**
 * `2/3 running`; scale to zero: instances asleep for idleness are shown as such, not as down
 * (`suspended (3/3 asleep: the next connection wakes them)`, `1/3 running, 2 suspended`).
 */
function instancesText(s: Service, short = false): string {
  const running = s.instances.filter((i) => i.state === 'running').length;
  const asleep = s.instances.filter((i) => i.state === 'suspended' && i.reason?.startsWith('idle for ')).length;
  if (asleep > 0 && running === 0) return short ? `suspended ${asleep}/${s.count}` : `suspended (${asleep}/${s.count} asleep: the next connection wakes them)`;
  return `${running}/${s.count}${short ? '' : ' running'}${asleep > 0 ? `, ${asleep} suspended` : ''}`;
}
