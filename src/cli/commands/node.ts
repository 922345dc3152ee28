/** `butter node ...` and `butter login`. */
import type { Command } from 'commander';
import { Client } from '../../sdk/node-client.ts';
import { fetchPinnedCa } from '../../sdk/tls.ts';
import { createInterface } from 'node:readline/promises';
import { client, saveConfig, UsageError } from '../config.ts';
import { age, printFields, printJson, printTable, size } from '../output.ts';

export function nodeCommands(program: Command): void {
  const node = program.command('node').description('nodes (machines running butter agent)');

  node
    .command('list')
    .description('list nodes: state, CPU/memory/disk allocated / allocatable, VM count')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { items } = await client().call('listNodes', {});
      if (o.json) return printJson(items);
      printTable(
        // Each resource: allocated / allocatable (free); `node show` adds totals and reserved.
        ['NAME', 'STATE', 'GROUP', 'ZONE', 'CPUS', 'MEMORY', 'DISK', 'VMS', 'HEARTBEAT'],
        items.map((n) => [
          n.name,
          n.cordoned ? `${n.state},cordoned` : n.state,
          n.group,
          n.zone,
          `${n.allocated.cpus}/${n.allocatable.cpus} (${n.free.cpus} free)`,
          `${size(n.allocated.memoryBytes)}/${size(n.allocatable.memoryBytes)} (${size(n.free.memoryBytes)} free)`,
          `${size(n.allocated.diskBytes)}/${size(n.allocatable.diskBytes)} (${size(n.free.diskBytes)} free)`,
          n.vmCount,
          age(n.lastHeartbeatAt),
        ]),
      );
    });

  node
    .command('show <name>')
    .description('show a node')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const c = client();
      const n = await c.call('getNode', { params: { name } });
      if (o.json) return printJson(n);
      // The node's trust in the control plane ends with the CA it pinned: say when.
      const { tls } = await c.call('whoami', {});
      const res = (k: 'cpus' | 'memoryBytes' | 'diskBytes', f: (v: number) => string | number) =>
        n.capacity ? `total ${f(n.capacity[k])}, reserved ${f(n.reserved[k])}, allocatable ${f(n.allocatable[k])}, allocated ${f(n.allocated[k])}, free ${f(n.free[k])}` : null;
      printFields([
        ['name', n.name],
        ['state', n.cordoned ? `${n.state} (cordoned)` : n.state],
        ['group', n.group],
        ['zone', n.zone],
        ['labels', Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(',') || null],
        ['driver', n.driver],
        ['accel', n.accelReason ? `${n.accel} (${n.accelReason})` : n.accel],
        ['cpus', res('cpus', (v) => v)],
        ['memory', res('memoryBytes', size)],
        ['disk', res('diskBytes', size)],
        ['vms', n.vmCount],
        ['mesh', n.mesh ? `${n.mesh.address}, endpoint ${n.mesh.endpoint ?? '(learned when it connects)'}, key ${n.mesh.publicKey}` : null],
        ['heartbeat', n.lastHeartbeatAt],
        ['created', n.createdAt],
        ['ca', tls ? `the control plane's CA (pinned when it joined) is valid until ${until(tls.caNotAfter)}` : null],
      ]);
    });

  for (const [verb, route, what] of [
    ['cordon', 'cordonNode', 'place no new VMs on a node'],
    ['uncordon', 'uncordonNode', 'place new VMs on a node again'],
  ] as const) {
    node
      .command(`${verb} <name>`)
      .description(what)
      .option('--json', 'print JSON')
      .action(async (name: string, o: { json?: boolean }) => {
        const n = await client().call(route, { params: { name } });
        if (o.json) printJson(n);
        else process.stdout.write(`node ${name} ${n.cordoned ? 'cordoned' : 'uncordoned'}\n`);
      });
  }

  for (const [verb, route, what] of [
    ['drain', 'drainNode', 'cordon a node and recreate its VMs on other nodes'],
    ['evacuate', 'evacuateNode', 'recreate the VMs of a lost node on other nodes'],
  ] as const) {
    node
      .command(`${verb} <name>`)
      .description(`${what} (from their images: local disk data is lost)`)
      .option('--yes', 'do not ask for confirmation')
      .option('--json', 'print JSON')
      .action(async (name: string, o: { yes?: boolean; json?: boolean }) => {
        const c = client();
        const vms = (await c.call('listVms', {})).items.filter((v) => v.node === name);
        if (!o.yes) {
          const question = `${verb} ${name}: ${vms.length} VM(s) (${vms.map((v) => v.name).join(', ') || 'none'}) will be recreated on other nodes from their images. Their local disk data is LOST. Continue? [y/N] `;
          if (!(await confirm(question))) throw new UsageError('not confirmed; nothing changed (use --yes to skip the question)');
        }
        const out = await c.call(route, { params: { name }, body: { confirm: true } });
        if (o.json) return printJson(out);
        for (const m of out.moved) process.stdout.write(`vm ${m.vm}: ${m.from} → ${m.to}\n`);
        for (const f of out.failed) process.stderr.write(`vm ${f.vm}: not moved: ${f.reason}\n`);
        if (out.failed.length) process.exitCode = 1;
      });
  }

  const token = node.command('token').description('join tokens for new nodes');
  token
    .command('create')
    .description('issue a single-use join token and print the command that joins a machine with it')
    .option('--ttl <duration>', 'how long it is valid (e.g. 30m, 1h, 7d)', '1h')
    .option('--group <group>', 'host group of the node that joins')
    .option('--zone <zone>', 'zone of the node that joins')
    .option('--json', 'print JSON')
    .action(async (o: { ttl: string; group?: string; zone?: string; json?: boolean }) => {
      const c = client();
      const out = await c.call('createJoinToken', { body: { ttl: o.ttl, ...(o.group ? { group: o.group } : {}), ...(o.zone ? { zone: o.zone } : {}) } });
      if (o.json) return printJson(out);
      process.stdout.write(`${out.token}\n`);
      process.stderr.write(
        `join token ${out.joinToken.id} (group ${out.joinToken.group}, zone ${out.joinToken.zone}) is valid once, until ${out.joinToken.expiresAt}.\n` +
          `On the new machine run:\n  butter agent --join ${c.url} --token ${out.token}${out.caHash ? ` --ca-hash ${out.caHash}` : ''}\n`,
      );
    });
  token
    .command('list')
    .description('list join tokens')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { items } = await client().call('listJoinTokens', {});
      if (o.json) return printJson(items);
      printTable(['ID', 'GROUP', 'ZONE', 'EXPIRES', 'USED BY'], items.map((t) => [t.id, t.group, t.zone, t.expiresAt, t.usedBy]));
    });

  node
    .command('remove <name>')
    .description('forget a node and revoke its token (refused while it has VMs, unless --force on a lost node)')
    .option('--force', 'a node that is not reachable (lost): forget its VMs too, as `vm rm --force` does')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { force?: boolean; json?: boolean }) => {
      await client().call('deleteNode', { params: { name }, ...(o.force ? { query: { force: 'true' as const } } : {}) });
      if (o.json) printJson({ name, removed: true });
      else process.stdout.write(`node ${name} removed${o.force ? ' (forced)' : ''}\n`);
    });

  node
    .command('label <name> <labels...>')
    .description('set labels (key=value) or remove them (key-)')
    .option('--json', 'print JSON')
    .action(async (name: string, labels: string[], o: { json?: boolean }) => {
      const body: Record<string, string | null> = {};
      for (const l of labels) {
        const m = /^([^=]+?)(?:=(.*)|(-))$/.exec(l);
        if (!m) throw new UsageError(`labels: expected key=value or key-, got ${JSON.stringify(l)}`);
        body[m[1]!] = m[3] ? null : m[2]!;
      }
      const n = await client().call('updateNode', { params: { name }, body: { labels: body } });
      if (o.json) return printJson(n);
      process.stdout.write(`node ${name} labels: ${Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(',') || '(none)'}\n`);
    });

  node
    .command('set <name>')
    .description("set a node's group, zone, or what it reserves for the host")
    .option('--group <group>', 'host group')
    .option('--zone <zone>', 'zone')
    .option('--reserve-cpus <n>', 'CPUs kept for the host')
    .option('--reserve-memory <size>', 'memory kept for the host')
    .option('--reserve-disk <size>', 'disk kept for the host')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { group?: string; zone?: string; reserveCpus?: string; reserveMemory?: string; reserveDisk?: string; json?: boolean }) => {
      const reserved = {
        ...(o.reserveCpus !== undefined ? { cpus: Number(o.reserveCpus) } : {}),
        ...(o.reserveMemory !== undefined ? { memory: o.reserveMemory } : {}),
        ...(o.reserveDisk !== undefined ? { disk: o.reserveDisk } : {}),
      };
      const n = await client().call('updateNode', {
        params: { name },
        body: { ...(o.group ? { group: o.group } : {}), ...(o.zone ? { zone: o.zone } : {}), ...(Object.keys(reserved).length ? { reserved } : {}) },
      });
      if (o.json) return printJson(n);
      process.stdout.write(`node ${name}: group ${n.group}, zone ${n.zone}, reserved ${n.reserved.cpus} cpu / ${size(n.reserved.memoryBytes)} / ${size(n.reserved.diskBytes)}\n`);
    });

  const group = program.command('group').description('host groups: overcommit ratios and placement policy');
  group
    .command('list')
    .description('list groups')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { items } = await client().call('listGroups', {});
      if (o.json) return printJson(items);
      printTable(['NAME', 'NODES', 'CPU RATIO', 'MEMORY RATIO', 'DISK RATIO', 'POLICY'], items.map((g) => [g.name, g.nodeCount, g.cpuRatio, g.memoryRatio, g.diskRatio, g.policy]));
    });
  group
    .command('set <name>')
    .description("set a group's overcommit ratios (defaults: cpu 4, memory 1, disk 1) or policy")
    .option('--cpu-ratio <r>', 'CPU overcommit')
    .option('--memory-ratio <r>', 'memory overcommit')
    .option('--disk-ratio <r>', 'disk overcommit')
    .option('--policy <policy>', 'spread or binpack')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { cpuRatio?: string; memoryRatio?: string; diskRatio?: string; policy?: string; json?: boolean }) => {
      const num = (v: string | undefined, field: string) => {
        if (v === undefined) return undefined;
        if (!/^\d+(\.\d+)?$/.test(v)) throw new UsageError(`${field}: must be a number, got ${JSON.stringify(v)}`);
        return Number(v);
      };
      if (o.policy !== undefined && o.policy !== 'spread' && o.policy !== 'binpack') throw new UsageError(`policy: must be spread or binpack, got ${JSON.stringify(o.policy)}`);
      const body = { cpuRatio: num(o.cpuRatio, 'cpu-ratio'), memoryRatio: num(o.memoryRatio, 'memory-ratio'), diskRatio: num(o.diskRatio, 'disk-ratio'), policy: o.policy as 'spread' | 'binpack' | undefined };
      const g = await client().call('setGroup', { params: { name }, body: Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined)) });
      if (o.json) return printJson(g);
      process.stdout.write(`group ${g.name}: cpu ${g.cpuRatio}, memory ${g.memoryRatio}, disk ${g.diskRatio}, ${g.policy}\n`);
    });

  program
    .command('whoami')
    .description("the logged-in token's role, and when the control plane's CA and server certificate expire")
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const c = client();
      const who = await c.call('whoami', {});
      if (o.json) return printJson({ url: c.url, ...who });
      printFields([
        ['url', c.url],
        ['role', who.role],
        ['node', who.node],
        ['ca', who.tls ? `${who.tls.caHash}, valid until ${until(who.tls.caNotAfter)}; never replaced automatically` : null],
        ['certificate', who.tls ? `valid until ${until(who.tls.certNotAfter)}; renewed 30 days before` : null],
      ]);
    });

  program
    .command('login <url>')
    .description('save the control plane URL and a token for later commands (pinning its CA)')
    .requiredOption('--token <token>', 'an admin, operator or viewer token (see DATA_DIR/admin.token)')
    .option('--ca-hash <sha256:hex>', "the control plane's CA hash, printed by `butter server` (needed for https)")
    .option('--json', 'print JSON')
    .action(async (url: string, o: { token: string; caHash?: string; json?: boolean }) => {
      if (!/^https?:\/\//.test(url)) throw new UsageError('url: must start with https:// (or http://)');
      let ca: string | undefined;
      if (url.startsWith('https://')) {
        if (!o.caHash) throw new UsageError('ca-hash: an https control plane needs --ca-hash (printed by `butter server`)');
        ca = await fetchPinnedCa(url, o.caHash);
      }
      const who = await new Client({ url, token: o.token, ...(ca ? { ca } : {}) }).call('whoami', {});
      const file = saveConfig({ url, token: o.token, ...(ca ? { ca } : {}) });
      if (o.json) return printJson({ url, role: who.role, config: file });
      process.stdout.write(`logged in to ${url} as ${who.role}; saved in ${file}\n`);
    });
}

/** A date and how far off it is, in days: `2027-12-01T09:00:00.000Z (in 365 days)`. */
function until(iso: string, now = Date.now()): string {
  const days = Math.round((new Date(iso).getTime() - now) / (24 * 3600 * 1000));
  return `${iso} (${days >= 0 ? `in ${days} days` : `${-days} days ago`})`;
}

/** Asks on the terminal; without one (a script), the answer is no. */
async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}
