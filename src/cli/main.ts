/** The `butter` command. */
import { Command, CommanderError } from 'commander';
import { isIP } from 'node:net';
import { API_VERSION } from '../api/routes.ts';
import { ENDPOINT } from '../api/schemas/node.ts';
import { toDnsName } from '../core/dns-name.ts';
import { ButterError } from '../sdk/client.ts';
import { ExitWith, UsageError } from './config.ts';
import { imageCommands } from './commands/image.ts';
import { nodeCommands } from './commands/node.ts';
import { tokenCommands } from './commands/token.ts';
import { eventsCommands } from './commands/events.ts';
import { networkCommands } from './commands/network.ts';
import { vmCommands } from './commands/vm.ts';
import { serviceCommands } from './commands/service.ts';
import { pathCommands } from './commands/path.ts';
import { graphCommands } from './commands/graph.ts';
import { testCommands } from './commands/test.ts';

/** Runs a daemon until SIGINT/SIGTERM, then its stop function. VMs keep running. */
async function daemon(start: () => Promise<() => Promise<void>>): Promise<void> {
  const stop = await start();
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  await stop();
  process.exit(0);
}

const DRIVERS = ['qemu', 'sim'];
function driverOpt(v: string): 'qemu' | 'sim' {
  if (!DRIVERS.includes(v)) throw new UsageError(`driver: must be qemu or sim, got ${JSON.stringify(v)}`);
  return v as 'qemu' | 'sim';
}

/** A --san: an IP address, or a DNS name (international names are fine: they become punycode). */
function sanOpt(v: string): string {
  if (isIP(v.replace(/^\[(.*)\]$/, '$1')) || toDnsName(v) !== null) return v;
  throw new UsageError(`san: --san ${JSON.stringify(v)} is not a DNS name or an IP address`);
}

interface MeshFlags {
  mesh: boolean;
  wgInterface: string;
  wgPort: string;
  wgEndpoint?: string;
}

/** The node mesh's flags, shared by `up` and `agent`. */
function withMeshOptions(cmd: Command): Command {
  return cmd
    .option('--wg-interface <name>', 'WireGuard interface of the node mesh', 'btwg0')
    .option('--wg-port <port>', 'UDP port of the node mesh', '51820')
    .option('--wg-endpoint <host:port>', 'where other nodes reach this one (default: the address the control plane sees, at --wg-port)')
    .option('--no-mesh', 'no WireGuard mesh: VMs here share networks with no other node');
}

function meshOpt(o: MeshFlags): { iface: string; port: number; endpoint?: string } | false {
  if (!o.mesh) return false;
  if (!/^[A-Za-z0-9_-]{1,15}$/.test(o.wgInterface)) throw new UsageError(`wg-interface: must be 1-15 letters, digits, "-" or "_", got ${JSON.stringify(o.wgInterface)}`);
  const port = Number(o.wgPort);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`wg-port: must be a port number, got ${JSON.stringify(o.wgPort)}`);
  if (o.wgEndpoint !== undefined && !ENDPOINT.test(o.wgEndpoint)) throw new UsageError(`wg-endpoint: must be host:port, got ${JSON.stringify(o.wgEndpoint)}`);
  return { iface: o.wgInterface, port, ...(o.wgEndpoint ? { endpoint: o.wgEndpoint } : {}) };
}

/** A parse of the daemons' flags whose Error is a usage mistake (exit 2, with the message). */
function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export function buildProgram(): Command {
  const program = new Command('butter').description('Butter: the cloud, but butter').version(API_VERSION).showHelpAfterError().exitOverride();

  const up = program
    .command('up')
    .description('run the control plane and a local agent in one process, and log the CLI in')
    .option('--data-dir <dir>', 'where Butter keeps its state', '/var/lib/butter')
    .option('--listen <host:port>', 'API address', '127.0.0.1:7700')
    .option('--driver <driver>', 'qemu, or sim (no guests: demos and scale tests)', 'qemu')
    .option('--no-egress', 'guests reach nothing outside this machine: no NAT, no DNS forwarding')
    .option('--no-tiny', 'do not build and add the tiny image')
    .option('--metadata-port <port>', 'metadata server port on 169.254.169.254', '80')
    .option('--metrics-listen <host:port>', "the agent's Prometheus /metrics (plain HTTP, a metrics or admin token): repeatable; mesh:PORT is the node's mesh address; none: off (default 127.0.0.1:7702 and mesh:7702)", (v: string, acc: string[]) => [...acc, v], [] as string[]);
  withMeshOptions(up)
    .action(async (o: { dataDir: string; listen: string; driver: string; egress: boolean; tiny: boolean; metadataPort: string; metricsListen: string[] } & MeshFlags) => {
      const { runUp } = await import('../daemon/up.ts');
      const { makeLogger } = await import('../daemon/logger.ts');
      const { parseListen } = await import('../daemon/listen.ts');
      const { host, port } = parseListen(o.listen, 7700);
      const { parseMetricsListen } = await import('../daemon/agent-metrics.ts');
      const mesh = meshOpt(o);
      const metricsListen = usage(() => parseMetricsListen(o.metricsListen, mesh !== false));
      await daemon(() => runUp({ dataDir: o.dataDir, host, port, driver: driverOpt(o.driver), noEgress: !o.egress, tiny: o.tiny, metadataPort: Number(o.metadataPort), mesh, metricsListen, log: makeLogger('butter-up') }));
    });

  program
    .command('down')
    .description("stop this machine's butter up and its VMs, and remove what it made on the host (--purge: its data too)")
    .option('--data-dir <dir>', "the butter up's data dir", '/var/lib/butter')
    .option('--purge', "also remove the data dir (VM disks, database, keys) and the CLI's config when it logs in to this Butter")
    .option('--timeout <seconds>', 'how long each guest gets to power off before QEMU is stopped', '10')
    .option('--json', 'print JSON')
    .action(async (o: { dataDir: string; purge?: boolean; timeout: string; json?: boolean }) => {
      const seconds = Number(o.timeout);
      if (!Number.isFinite(seconds) || seconds < 0 || seconds > 3600) throw new UsageError(`timeout: must be a number of seconds from 0 to 3600, got ${JSON.stringify(o.timeout)}`);
      const { runDown } = await import('../daemon/down.ts');
      const { printJson } = await import('./output.ts');
      const r = await runDown({ dataDir: o.dataDir, purge: !!o.purge, vmTimeoutMs: seconds * 1000, log: (m) => process.stderr.write(`${m}\n`) });
      if (o.json) printJson(r);
      else {
        for (const x of r.removed) process.stdout.write(`removed ${x.kind} ${x.name}\n`);
        for (const k of r.kept) process.stdout.write(`kept ${k.what}: ${k.why}\n`);
        if (!r.removed.length && !r.failed.length) process.stdout.write('nothing to remove: Butter is down on this machine\n');
        else if (!r.failed.length) process.stdout.write('Butter is down on this machine\n');
      }
      if (r.failed.length) throw new Error(`could not remove ${r.failed.map((f) => `${f.kind} ${f.name} (${f.error})`).join('; ')}`);
    });

  program
    .command('server')
    .description('run the control plane (HTTPS with its own CA)')
    .option('--data-dir <dir>', 'where the control plane keeps its state', '/var/lib/butter')
    .option('--listen <host:port>', 'API address', '127.0.0.1:7700')
    .option('--san <name>', 'another DNS name or IP for the server certificate (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--no-tls', 'serve plain HTTP (only behind your own TLS)')
    .action(async (o: { dataDir: string; listen: string; san: string[]; tls: boolean }) => {
      const { runServer } = await import('../daemon/server.ts');
      const { makeLogger } = await import('../daemon/logger.ts');
      const { parseListen } = await import('../daemon/listen.ts');
      const { host, port } = parseListen(o.listen, 7700);
      const sans = o.san.map(sanOpt); // before anything is written
      await daemon(() => runServer({ dataDir: o.dataDir, host, port, tls: o.tls, sans, log: makeLogger('butter-server') }));
    });

  const agent = program
    .command('agent')
    .description('run a node agent: join a cluster once, then keep running its VMs')
    .option('--join <url>', 'control plane to join (https://HOST:7700)')
    .option('--token <token>', 'join token (bj_…, with --join) or node token (bt_… or @FILE, with --server)')
    .option('--ca-hash <sha256:hex>', "the control plane's CA hash (with --join), printed by `butter node token create`")
    .option('--name <name>', 'node name (default: this host name)')
    .option('--server <url>', 'control plane URL, for a node token made with POST /v1/nodes')
    .option('--state-dir <dir>', "where the agent keeps its credential and VMs' disks", '/var/lib/butter-agent')
    .option('--driver <driver>', 'qemu or sim', 'qemu')
    .option('--no-egress', 'guests reach nothing outside this machine')
    .option('--metadata-port <port>', 'metadata server port on 169.254.169.254', '80')
    .option('--metrics-listen <host:port>', "the agent's Prometheus /metrics (plain HTTP, a metrics or admin token): repeatable; mesh:PORT is the node's mesh address; none: off (default 127.0.0.1:7702 and mesh:7702)", (v: string, acc: string[]) => [...acc, v], [] as string[]);
  withMeshOptions(agent)
    .action(async (o: { join?: string; token?: string; caHash?: string; name?: string; server?: string; stateDir: string; driver: string; egress: boolean; metadataPort: string; metricsListen: string[] } & MeshFlags) => {
      const { runAgent } = await import('../daemon/server.ts');
      const { loadCredential } = await import('../daemon/join.ts');
      const { makeLogger } = await import('../daemon/logger.ts');
      const joined = loadCredential(o.stateDir);
      if (!joined && o.join && (!o.token || !o.caHash)) throw new UsageError('join: --join needs --token and --ca-hash');
      if (!joined && o.server && !o.token) throw new UsageError('token: --server needs --token');
      const { parseMetricsListen } = await import('../daemon/agent-metrics.ts');
      const mesh = meshOpt(o);
      const metricsListen = usage(() => parseMetricsListen(o.metricsListen, mesh !== false));
      await daemon(() =>
        runAgent({
          stateDir: o.stateDir,
          join: o.join ? { url: o.join, token: o.token!, caHash: o.caHash!, name: o.name } : undefined,
          server: o.server ? { url: o.server, token: o.token! } : undefined,
          driver: driverOpt(o.driver),
          noEgress: !o.egress,
          metadataPort: Number(o.metadataPort),
          mesh,
          metricsListen,
          log: makeLogger('butter-agent'),
        }),
      );
    });

  program
    .command('sim')
    .description('run N simulated nodes against the control plane the CLI is logged into, until stopped')
    .requiredOption('--nodes <n>', 'how many')
    .option('--prefix <name>', 'node names: PREFIX-1 … PREFIX-N', 'sim')
    .option('--zones <list>', 'comma-separated zones to spread the nodes over', 'default')
    .option('--cpus <n>', 'CPUs each node reports', '16')
    .option('--memory <size>', 'memory each node reports', '64G')
    .option('--disk <size>', 'disk each node reports', '1T')
    .option('--state-dir <dir>', 'where the simulated nodes keep their state', '/var/lib/butter-sim')
    .action(async (o: { nodes: string; prefix: string; zones: string; cpus: string; memory: string; disk: string; stateDir: string }) => {
      const { runSim } = await import('../daemon/sim.ts');
      const { makeLogger } = await import('../daemon/logger.ts');
      const { parseSize } = await import('../core/units.ts');
      const { client, loadConfig } = await import('./config.ts');
      const n = Number(o.nodes);
      if (!Number.isInteger(n) || n < 1 || n > 5000) throw new UsageError('nodes: must be a whole number from 1 to 5000');
      const memoryBytes = parseSize(o.memory);
      const diskBytes = parseSize(o.disk);
      if (memoryBytes === undefined) throw new UsageError('memory: must be a size with a unit, e.g. 64G');
      if (diskBytes === undefined) throw new UsageError('disk: must be a size with a unit, e.g. 1T');
      const cpus = Number(o.cpus);
      if (!Number.isInteger(cpus) || cpus < 1) throw new UsageError('cpus: must be a whole number');
      await daemon(() => runSim({ admin: client(), ca: loadConfig()?.ca, nodes: n, prefix: o.prefix, zones: o.zones.split(',').filter(Boolean), capacity: { cpus, memoryBytes, diskBytes }, stateDir: o.stateDir, log: makeLogger('butter-sim') }));
    });

  nodeCommands(program);
  imageCommands(program);
  networkCommands(program);
  vmCommands(program);
  serviceCommands(program);
  pathCommands(program);
  graphCommands(program);
  testCommands(program);
  tokenCommands(program);
  eventsCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof ExitWith) return e.code;
    if (e instanceof UsageError) {
      process.stderr.write(`error: ${e.message}\n`);
      return 2;
    }
    // Whole: a message of several lines says several things (a blueprint's problems, one a
    // line); the first line alone would hide all but one. No stack: that is for the logs.
    const msg = e instanceof ButterError ? e.message : e instanceof Error ? e.message : String(e);
    process.stderr.write(`error: ${msg.trimEnd()}\n`);
    return 1;
  }
}

// Flush stdout before exiting: a pipe may still hold the output.
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
