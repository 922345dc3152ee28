/** `butter events`: the audit log, the recent events or (`--follow`) live as they are committed. */
import type { Command } from 'commander';
import { EventResource, type Event } from '../../api/schemas/event.ts';
import { EventVerbs, type EventStreamOptions } from '../../sdk/events.ts';
import { client, UsageError } from '../config.ts';
import { printJson, printTable } from '../output.ts';

const RESOURCES = EventResource.options;
type Resource = (typeof RESOURCES)[number];

interface Opts {
  follow?: boolean;
  resource?: string;
  name?: string;
  since?: string;
  limit: string;
  json?: boolean;
}

function wholeNumber(what: string, v: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new UsageError(`${what}: must be a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}, got ${JSON.stringify(v)}`);
  return n;
}

const row = (e: Event) => [e.revision, e.at.replace(/\.\d+Z$/, 'Z'), e.actor, e.action, e.resource, e.name, e.message];
const HEAD = ['REV', 'AT', 'ACTOR', 'ACTION', 'RESOURCE', 'NAME', 'MESSAGE'];
/** Followed lines cannot be measured as a table is: fixed columns, wide enough for the usual values. */
const WIDTHS = [6, 20, 20, 10, 10, 14];
const line = (cells: (string | number)[]) => cells.map((c, i) => (i < WIDTHS.length ? String(c).padEnd(WIDTHS[i]!) : String(c))).join('  ');

export function eventsCommands(program: Command): void {
  program
    .command('events')
    .description('the audit log: every change (VMs, nodes, networks, services, paths, images, tokens), who made it and when')
    .option('-f, --follow', 'stream new events as they happen (resumes by itself after a dropped connection or a control-plane restart)')
    .option('--resource <kind>', `only events about one kind of thing: ${RESOURCES.join(', ')}`)
    .option('--name <name>', 'only events about the thing of this name')
    .option('--since <revision>', 'only events after this store revision (with --follow: replayed first)')
    .option('--limit <n>', 'without --follow: how many events (the newest, or the first after --since)', '50')
    .option('--json', 'print JSON (with --follow: one event per line)')
    .action(async (o: Opts) => {
      if (o.resource !== undefined && !RESOURCES.includes(o.resource as Resource)) throw new UsageError(`resource: must be one of ${RESOURCES.join(', ')}, got ${JSON.stringify(o.resource)}`);
      const since = o.since === undefined ? undefined : wholeNumber('since', o.since, 0);
      const limit = wholeNumber('limit', o.limit, 1, 1000);
      const filter = { ...(o.resource ? { resource: o.resource as Resource } : {}), ...(o.name ? { name: o.name } : {}) };
      if (!o.follow) {
        const query = { ...filter, ...(since === undefined ? { last: limit } : { sinceRevision: since, limit }) };
        const { items } = await client().call('listEvents', { query });
        if (o.json) return printJson(items);
        return printTable(HEAD, items.map(row));
      }
      await follow({ ...filter, ...(since !== undefined ? { since } : {}) }, o.json ?? false);
    });
}

/** Prints events as they come until interrupted; a refusal (bad token, bad filter) ends it as any call's would. */
async function follow(opts: EventStreamOptions, json: boolean): Promise<void> {
  let down = false;
  const stream = new EventVerbs(client()).stream({
    ...opts,
    // One line when the link drops, not one per attempt.
    onReconnect: (why) => {
      if (!down) process.stderr.write(`events: connection lost (${why instanceof Error ? why.message : String(why)}); reconnecting…\n`);
      down = true;
    },
  });
  if (!json) process.stdout.write(`${line(HEAD)}\n`);
  for await (const item of stream) {
    if (down) process.stderr.write('events: reconnected\n');
    down = false;
    if ('gap' in item) {
      if (json) process.stdout.write(`${JSON.stringify(item)}\n`);
      process.stderr.write(`events: the events after revision ${item.gap.from} were pruned from the audit log (the oldest kept is at ${item.gap.oldest}); what happened between is not shown\n`);
      continue;
    }
    process.stdout.write(json ? `${JSON.stringify(item)}\n` : `${line(row(item))}\n`);
  }
}
