/**
 * `NetworkHost` on plain Linux: per network a bridge with one tap per port (and the VXLAN port
 * and VPN router, when it has them), and a gateway namespace with the gateway and metadata
 * addresses and its dnsmasq (core/gateway-ns.ts); one nftables ruleset for the host.
 *
 * `apply` compares what it wants with what it observes (`ip -j -d addr show`, dnsmasq's
 * pidfile, the files it last wrote, the ruleset it last loaded) and only runs commands for
 * differences, so the agent can call it on every reconcile. Every command goes through `Exec`.
 *
 * The parts live in `linux-net/`, one concept each: `links.ts` (what `ip -j` says, the mark),
 * `bridge.ts` (bridge and taps), `gateway.ts` (gateway namespaces), `vxlan.ts`, `vpn-router.ts`,
 * `firewall.ts` (nft and forwarding), `garbage.ts` (garbage collection and teardown).
 *
 * What is ours: every interface it makes carries an alias (`ip link set … alias`, `ifalias` in
 * `ip -j link`), `mark`, and so does the `lo` of every gateway namespace it makes. Garbage
 * collection and teardown delete only what carries the mark and is named like ours: a user's
 * `bt0` or `btrfs-test`, or a namespace named like ours, is left alone. An alias lives with its
 * interface (an agent restart finds it, a reboot takes both), so no list of our own has to be
 * kept in step with the kernel. Ours from before the mark existed get it when applied again.
 */
import { resolve } from 'node:path';
import { renderDhcpHosts, renderDnsHosts, renderDnsmasqConf } from '../../core/dnsmasq-config.ts';
import { DnsmasqProcesses } from './dnsmasq-process.ts';
import { renderNftRuleset, RULESET_TABLES } from '../../core/nft-rules.ts';
import { PATHS_TABLE, renderPathsRuleset, type PublishedAdmission } from '../../core/paths/nft-paths.ts';
import { gatewayPublished, PUBLISH_TABLE, renderPublishRuleset } from '../../core/paths/nft-publish.ts';
import type { Path, PathModel, ServiceBlock } from '../../core/paths/model.ts';
import type { DesiredPublished } from '../../api/schemas/desired.ts';
import type { Exec } from './exec.ts';
import { NetworkApplyError, type HostPolicy, type LocalNetwork, type NetworkHost } from './network.ts';
import { PolicyRouting } from './linux-routing.ts';
import { Reverter } from './reverter.ts';
import { gatewayMac } from '../../core/network-macs.ts';
import { GATEWAY_IF, renderGatewayNft } from '../../core/gateway-ns.ts';
import { readLinks, readNamespaces, type HostCtx, type Links } from './linux-net/links.ts';
import { ensureBridge, ensurePort } from './linux-net/bridge.ts';
import { GatewayNamespaces } from './linux-net/gateway.ts';
import { ensureOverlay } from './linux-net/vxlan.ts';
import { ensureVpnRouter } from './linux-net/vpn-router.ts';
import { HostFirewall } from './linux-net/firewall.ts';
import { Garbage } from './linux-net/garbage.ts';

export { gatewayMac };

export interface LinuxNetworkHostOptions {
  exec: Exec;
  /** dnsmasq files go under `<stateDir>/net/<network>/`; dnsmasq's unprivileged user must be able to traverse it. */
  stateDir: string;
  log?: (m: string) => void;
  /** Our interfaces' names start with this; only those that also carry `mark` are garbage-collected. */
  prefix?: string;
  /** The alias set on every interface (and gateway namespace's `lo`) this host makes; unique per agent. */
  mark?: string;
  /** Where processes are looked up (tests point it at a fake tree). */
  procDir?: string;
  dnsmasqBin?: string;
  /** Gateway namespaces are named this plus the network's name; unique per agent (namespace names are host-wide). */
  netnsPrefix?: string;
  /** Where the host's metadata server listens on each uplink (guests' port 80 is forwarded there). */
  metadataPort?: number;
  /** The node's WireGuard mesh interface, if any: fenced to mesh addresses (VPN peers aside). */
  meshInterface?: string;
  /** Upstream servers for networks' dnsmasq, when not /etc/resolv.conf (core/dnsmasq-config.ts upstreamResolvFile). */
  resolvFile?: string;
}

/** Everything rendered for one network, before any change is made. */
interface Plan {
  net: LocalNetwork;
  conf: string;
  nsNft: string;
  hosts: string;
  names: string;
}

export class LinuxNetworkHost implements NetworkHost {
  private readonly ctx: HostCtx;
  private readonly metadataPort: number;
  private readonly meshInterface: string | undefined;
  private readonly resolvFile: string | undefined;
  private readonly routing: PolicyRouting;
  private readonly dnsmasq: DnsmasqProcesses;
  private readonly gateways: GatewayNamespaces;
  private readonly firewall: HostFirewall;
  private readonly garbage: Garbage;
  /** apply/teardown never interleave: each reads the host state the previous one left. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: LinuxNetworkHostOptions) {
    const log = opts.log ?? (() => {});
    this.ctx = { exec: opts.exec, log, prefix: opts.prefix ?? 'bt', mark: opts.mark ?? 'butter' };
    this.routing = new PolicyRouting(opts.exec);
    // Absolute: the paths end up in dnsmasq's config, which it reads from its own cwd.
    this.dnsmasq = new DnsmasqProcesses({ exec: opts.exec, stateDir: resolve(opts.stateDir), procDir: opts.procDir ?? '/proc', bin: opts.dnsmasqBin ?? 'dnsmasq', log });
    this.gateways = new GatewayNamespaces(this.ctx, this.routing, opts.netnsPrefix ?? 'butter-');
    this.firewall = new HostFirewall(opts.exec);
    this.garbage = new Garbage(this.ctx, this.gateways, this.dnsmasq, this.routing, this.firewall);
    this.metadataPort = opts.metadataPort ?? 80;
    this.meshInterface = opts.meshInterface;
    this.resolvFile = opts.resolvFile;
  }

  /** The gateway namespace of a network on this host. */
  netnsOf(network: string): string {
    return this.gateways.netnsOf(network);
  }

  apply(networks: readonly LocalNetwork[], policy?: HostPolicy): Promise<void> {
    return this.serialize(() => this.doApply(networks, policy));
  }

  teardown(): Promise<void> {
    return this.serialize(() => this.garbage.teardown());
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => {});
    return p;
  }

  private async doApply(all: readonly LocalNetwork[], policy?: HostPolicy): Promise<void> {
    // Render and validate everything first: bad input changes nothing on the host.
    const published = policy?.published ?? [];
    const nftOptions = { metadataPort: this.metadataPort, ...(this.meshInterface ? { mesh: this.meshInterface } : {}), ...(published.length > 0 ? { published: true } : {}) };
    const rendered = renderNftRuleset(all, nftOptions);
    const allPlans = all.map((net) => this.plan(net, policy));
    // Two networks that would share a device or an uplink address cannot both be built: the one
    // standing on the host (else the first) is, the other fails alone (and is not kept).
    const clashes = checkUnique(all, allUnique(all) ? new Set<string>() : await this.standingNames(all));
    const networks = all.filter((n) => !clashes.has(n.name));
    const ruleset = clashes.size === 0 ? rendered : renderNftRuleset(networks, nftOptions);
    const plans = allPlans.filter((p) => !clashes.has(p.net.name));
    const failures = new Map<string, unknown>(clashes);
    const paths = renderPaths(networks, published, failures);
    const publish = renderPublishRuleset({
      node: policy?.node ?? '',
      ...(this.meshInterface && policy?.mesh ? { mesh: { iface: this.meshInterface, ...policy.mesh } } : {}),
      networks: networks.map((n) => ({ name: n.name, devices: [n.bridge, n.uplink.device, ...(n.vpn ? [n.vpn.router] : [])], uplinkNs: n.uplink.ns })),
      published,
    });

    // Firewall first: rules match interfaces by name, so they can exist before the taps,
    // and a tap never exists without its anti-spoofing rules, nor a service instance's
    // without its paths (default deny).
    // The host's links and namespaces are read beside it (no rule makes or removes one): each
    // `ip` run is ~10 ms a VM's start waits for. All three end before a failure is thrown, so
    // no `nft` of this apply still runs when the next one starts.
    const [loaded, read, named] = await Promise.allSettled([
      this.firewall.load([
        { tables: RULESET_TABLES, text: ruleset },
        { tables: [PATHS_TABLE], text: paths },
        { tables: [PUBLISH_TABLE], text: publish },
      ]),
      readLinks(this.ctx.exec),
      readNamespaces(this.ctx.exec),
    ]);
    for (const r of [loaded, read, named]) if (r.status === 'rejected') throw r.reason;
    const links = (read as PromiseFulfilledResult<Links>).value;
    const namespaces = (named as PromiseFulfilledResult<Set<string>>).value;
    if (networks.some((n) => n.nat || n.vpn) || published.length > 0) await this.firewall.enableForwarding();
    // Networks this apply tried to create and rolled back: they get no routing rules. A network
    // that existed keeps its own even when this apply failed on it.
    const rolledBack = new Set<string>();
    for (const plan of plans) {
      // One broken network must not stop the others from converging.
      const existed = namespaces.has(this.netnsOf(plan.net.name));
      try {
        await this.applyNetwork(plan, links, namespaces);
      } catch (err) {
        failures.set(plan.net.name, err);
        if (!existed) rolledBack.add(plan.net.name);
      }
    }
    const standing = networks.filter((n) => !rolledBack.has(n.name));
    await this.garbage.collect(networks, links, namespaces, standing);
    await this.routing.routeHost(standing);
    if (failures.size > 0) throw new NetworkApplyError(failures);
  }

  /** The networks whose gateway namespace exists: they stood before this apply. */
  private async standingNames(networks: readonly LocalNetwork[]): Promise<Set<string>> {
    const namespaces = await readNamespaces(this.ctx.exec);
    return new Set(networks.filter((n) => namespaces.has(this.netnsOf(n.name))).map((n) => n.name));
  }

  private plan(net: LocalNetwork, policy: HostPolicy | undefined): Plan {
    const files = this.dnsmasq.filesOf(net.name);
    const published = policy ? gatewayPublished(policy.node, net.name, policy.published) : [];
    return {
      net,
      // dnsmasq serves the namespace's gateway interface.
      conf: renderDnsmasqConf({ ...net, bridge: GATEWAY_IF, ...(this.resolvFile ? { resolvFile: this.resolvFile } : {}) }, files),
      nsNft: renderGatewayNft({ gateway: net.gateway, nat: net.nat, uplink: net.uplink, metadataPort: this.metadataPort, ...(published.length > 0 ? { published } : {}) }),
      hosts: renderDhcpHosts(net.ports),
      names: renderDnsHosts(net.name, [...net.ports, ...(net.remoteNames ?? [])], net.services),
    };
  }

  /** Anything this call creates for the network is removed again if a later step fails. */
  private async applyNetwork(plan: Plan, links: Links, namespaces: Set<string>): Promise<void> {
    const { net } = plan;
    const rev = new Reverter();
    try {
      await ensureBridge(this.ctx, net, links, rev);
      const gatewayCreated = await this.gateways.ensure(net, plan.nsNft, links, namespaces, rev);
      for (const port of net.ports) await ensurePort(this.ctx, port, net, links, rev);
      if (net.overlay) await ensureOverlay(this.ctx, net, net.overlay, links, rev);
      if (net.vpn) await ensureVpnRouter(this.ctx, this.routing, net, net.vpn, links, rev);
      await this.dnsmasq.ensure({ network: net.name, netns: this.netnsOf(net.name), conf: plan.conf, hosts: plan.hosts, names: plan.names, ports: net.ports }, gatewayCreated, rev);
      rev.done();
    } catch (err) {
      this.ctx.log(`network ${net.name}: apply failed, undoing what was created: ${String(err)}`);
      await rev.revert();
      throw err;
    }
  }
}

/**
 * The paths table for the networks on this host (core/paths/nft-paths.ts). A network whose
 * own model does not render (blocks that overlap: the control plane's bug) fails alone, in
 * `failures`, and is enforced as closed as it can be: its services with no path; if even
 * those do not render, it is left out of the table (logged through its failure).
 */
function renderPaths(networks: readonly LocalNetwork[], published: readonly DesiredPublished[], failures: Map<string, unknown>): string {
  const admit: PublishedAdmission[] = published.map((p) => ({ network: p.network, service: p.service, proto: p.proto, ports: p.ports }));
  const services = (n: LocalNetwork): ServiceBlock[] => (n.services ?? []).flatMap((s) => (s.block ? [{ network: n.name, name: s.name, block: s.block }] : []));
  const pathsOf = (n: LocalNetwork): Path[] => (n.paths ?? []).map((p) => ({ network: n.name, from: p.from, to: p.to, proto: p.proto, ports: p.ports }));
  const pn = (n: LocalNetwork) => ({ name: n.name, bridge: n.bridge, gateway: n.gateway });
  const model: { services: ServiceBlock[]; paths: Path[] } = { services: [], paths: [] };
  for (const n of networks) {
    const own: PathModel = { services: services(n), paths: pathsOf(n) };
    try {
      renderPathsRuleset(own, [pn(n)], admit);
    } catch (e) {
      failures.set(n.name, new Error(`paths: ${e instanceof Error ? e.message : String(e)}`));
      try {
        renderPathsRuleset({ services: own.services, paths: [] }, [pn(n)]);
        model.services.push(...own.services);
      } catch {
        // Not even its services render: nothing of it in the table.
      }
      continue;
    }
    model.services.push(...own.services);
    model.paths.push(...own.paths);
  }
  const included = networks.filter((n) => !failures.has(n.name) || model.services.some((s) => s.network === n.name));
  return renderPathsRuleset(model, included.map(pn), admit.filter((a) => !failures.has(a.network)));
}

/** Every device name, uplink address and VPN table a network needs on the host, each unique to it. */
function claimsOf(n: LocalNetwork): string[] {
  return [
    `network ${n.name}`,
    `interface ${n.bridge}`,
    `interface ${n.gatewayPort}`,
    `interface ${n.uplink.device}`,
    // Uplinks come from the VNI modulo 16,384 (core/gateway-ns.ts): two may meet on one host.
    `uplink address ${n.uplink.root}`,
    ...n.ports.map((p) => `interface ${p.tap}`),
    ...(n.overlay ? [`interface ${n.overlay.device}`] : []),
    ...(n.vpn ? [`interface ${n.vpn.router}`, `interface ${n.vpn.port}`, `VPN table ${n.vpn.table}`] : []),
  ];
}

/** True when no two networks claim the same thing (the common case: nothing to look up). */
function allUnique(networks: readonly LocalNetwork[]): boolean {
  const all = networks.flatMap((n) => [...new Set(claimsOf(n))]);
  return new Set(all).size === all.length;
}

/**
 * Two networks on one host must not share a name, an interface, an uplink address or a VPN
 * table (nor may one network use a name twice). Returns the networks that lose, with why:
 * networks in `standing` claim first, then the others in order.
 */
function checkUnique(networks: readonly LocalNetwork[], standing: ReadonlySet<string>): Map<string, Error> {
  const owner = new Map<string, string>();
  const lost = new Map<string, Error>();
  const order = [...networks.filter((n) => standing.has(n.name)), ...networks.filter((n) => !standing.has(n.name))];
  for (const n of order) {
    const claims = claimsOf(n);
    const dup = claims.find((c, i) => owner.has(c) || claims.indexOf(c) !== i);
    if (dup !== undefined) {
      const other = owner.get(dup);
      lost.set(n.name, new Error(`duplicate ${dup}${other !== undefined && other !== n.name ? ` (network ${other} has it on this host)` : ''}`));
      continue;
    }
    for (const c of claims) owner.set(c, n.name);
  }
  return lost;
}
