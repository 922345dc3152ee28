/**
 * Builds a node agent from command-line choices: which driver, whether KVM really works,
 * the host network adapter and the metadata server address.
 */
import { createHash } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { SYSTEMD_RESOLV, upstreamResolvFile } from '../core/dnsmasq-config.ts';
import { basename, join, resolve } from 'node:path';
import { Agent, type AgentOptions } from '../agent/agent.ts';
import { LinuxMeshHost } from '../agent/host/linux-mesh.ts';
import { loadOrCreateKey } from '../agent/wireguard-key.ts';
import { SystemExec } from '../agent/host/exec.ts';
import { probeAccel } from '../agent/host/kvm-probe.ts';
import { LinuxNetworkHost } from '../agent/host/linux-network.ts';
import { removeStaleProbes, runProbes } from '../agent/host/path-probe.ts';
import { QemuDriver } from '../agent/host/qemu-driver.ts';
import { SimDriver } from '../agent/host/sim-driver.ts';
import { defaultRouteAddress, underlayMtu } from '../agent/host/underlay.ts';
import type { Client } from '../sdk/client.ts';
import type { Logger } from './logger.ts';
import { DaemonConfig } from './config.ts';

export interface AgentRuntimeOptions {
  client: Client;
  /** The control plane's URL: the underlay's MTU is read off the route toward it. */
  url: string;
  node: string;
  stateDir: string;
  driver: 'qemu' | 'sim';
  noEgress: boolean;
  metadataPort?: number;
  /** The WireGuard mesh interface; false: none (a machine that will never have peers). */
  mesh: MeshOptions | false;
  log: Logger;
  /** The bounds from `butter.yaml` (config.ts); defaults without. */
  config?: DaemonConfig;
  /** What to do when the control plane refuses the node's token: logged once with the refusal. */
  rejectedHint?: string;
  /** Keep Prometheus metrics (served by agent-metrics.ts). */
  metrics?: boolean;
  onMeshAddress?: (address: string) => void;
}

export interface MeshOptions {
  iface: string;
  port: number;
  /** `host:port` other nodes send to, when the address the control plane sees is not it. */
  endpoint?: string | undefined;
}

export async function buildAgent(o: AgentRuntimeOptions): Promise<Agent> {
  const stateDir = resolve(o.stateDir);
  // Owner-only: VMs' disks and consoles, the node's key and credential (dnsmasq's files live under /run).
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  chmodSync(stateDir, 0o700);
  const exec = new SystemExec();
  const log = (m: string) => o.log.info({ component: 'agent' }, m);
  const c = o.config ?? DaemonConfig.parse({});
  const bounds = { consoleKeepBytes: c.console.nodeMaxBytes, imageCache: { unusedGraceMs: c.imageCache.unusedGraceMinutes * 60_000, minFreePercent: c.imageCache.minFreePercent } };
  const hint = { ...(o.rejectedHint ? { rejectedHint: o.rejectedHint } : {}), ...(o.metrics ? { metrics: true } : {}), ...(o.onMeshAddress ? { onMeshAddress: o.onMeshAddress } : {}) };
  if (o.driver === 'sim') {
    return new Agent({ client: o.client, node: o.node, stateDir, driver: new SimDriver({ stateDir, log }), accel: { accel: 'tcg', reason: 'simulated driver' }, log, ...bounds, ...hint });
  }
  const accel = await probeAccel(exec);
  // One warning, once: TCG works everywhere but is an order of magnitude slower.
  if (accel.accel === 'tcg') o.log.warn(`KVM acceleration unavailable (${accel.reason}); guests run under TCG emulation`);
  let mesh: AgentOptions['mesh'];
  if (o.mesh) {
    const key = loadOrCreateKey(stateDir);
    const mtu = await underlayMtu(exec, await addressOf(new URL(o.url).hostname));
    // Looked up once, at the start, like the MTU (a new DHCP lease needs an agent restart).
    const defaultAddress = o.mesh.endpoint ? undefined : await defaultRouteAddress(exec);
    mesh = {
      host: new LinuxMeshHost({ exec, stateDir, key, iface: o.mesh.iface, listenPort: o.mesh.port, mark: meshMarkOf(stateDir), log }),
      publicKey: key.publicKey,
      listenPort: o.mesh.port,
      iface: o.mesh.iface,
      ...(o.mesh.endpoint ? { endpoint: o.mesh.endpoint } : {}),
      ...(mtu ? { underlayMtu: mtu } : {}),
      ...(defaultAddress ? { defaultAddress } : {}),
    };
  }
  // What a probe run of `path verify` left when its agent was killed (a namespace, a table).
  await removeStaleProbes(exec).then(
    (removed) => removed.forEach((r) => log(`path verify: removed ${r}, left by a probe run that was killed`)),
    (e: unknown) => log(`path verify: could not look for a killed probe run's leftovers: ${String(e)}`),
  );
  return new Agent({
    client: o.client,
    node: o.node,
    stateDir,
    driver: new QemuDriver({ exec, stateDir, accel: accel.accel, log }),
    probe: (bridge, probes) => runProbes(exec, bridge, probes),
    exec,
    ...(mesh ? { mesh } : {}),
    network: new LinuxNetworkHost({ exec, stateDir: dnsmasqDir(stateDir), log, netnsPrefix: netnsPrefixOf(stateDir), mark: linkMarkOf(stateDir), metadataPort: o.metadataPort ?? 80, ...(o.mesh ? { meshInterface: o.mesh.iface } : {}), ...resolvFileOption() }),
    accel,
    noEgress: o.noEgress,
    metadataPort: o.metadataPort ?? 80,
    log,
    ...bounds,
    ...hint,
  });
}

/** An IP literal as is (brackets off), a name resolved; undefined when it does not resolve. */
async function addressOf(host: string): Promise<string | undefined> {
  const bare = host.replace(/^\[|\]$/g, '');
  if (isIP(bare)) return bare;
  return (await lookup(bare).catch(() => undefined))?.address;
}

/**
 * dnsmasq drops to `nobody` and re-reads its files on SIGHUP, so they cannot live in a
 * private (0700) data dir. They go under /run, per agent state dir: rebuilt after a reboot,
 * like the dnsmasq processes themselves.
 */
export function dnsmasqDirPath(stateDir: string): string {
  return join('/run/butter', `agent-${createHash('sha256').update(resolve(stateDir)).digest('hex').slice(0, 12)}`);
}

/** Where networks' dnsmasq find upstream servers from inside their namespaces (see upstreamResolvFile). */
function resolvFileOption(): { resolvFile?: string } {
  let etc = '';
  try {
    etc = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    // none: dnsmasq finds no upstream either way
  }
  const file = upstreamResolvFile(etc, existsSync(SYSTEMD_RESOLV));
  return file ? { resolvFile: file } : {};
}

/** Gateway namespaces' names are host-wide: this agent's carry its state dir's hash (as its /run dir does). */
export function netnsPrefixOf(stateDir: string): string {
  return `butter-${basename(dnsmasqDirPath(stateDir)).slice('agent-'.length)}-`;
}

/** The alias on every interface this agent's network host makes: how it tells its own from a user's (linux-network.ts). */
export function linkMarkOf(stateDir: string): string {
  return `butter:${basename(dnsmasqDirPath(stateDir)).slice('agent-'.length)}`;
}

/** The alias on this agent's mesh interface: its own, so the network host's garbage collection never takes it (linux-mesh.ts). */
export function meshMarkOf(stateDir: string): string {
  return `butter-mesh:${basename(dnsmasqDirPath(stateDir)).slice('agent-'.length)}`;
}

function dnsmasqDir(stateDir: string): string {
  const dir = dnsmasqDirPath(stateDir);
  mkdirSync(dir, { recursive: true });
  chmodSync('/run/butter', 0o755);
  chmodSync(dir, 0o755);
  return dir;
}
