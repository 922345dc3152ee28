/**
 * `NetworkHost` on plain Linux: per network a bridge with one tap per port (and the VXLAN port
 * and VPN router, when it has them), and a gateway namespace with the gateway and metadata
 * addresses and its dnsmasq (core/gateway-ns.ts); one nftables ruleset for the host.
 *
 * `apply` compares what it wants with what it observes (`ip -j -d addr show`, dnsmasq's
 * pidfile, the files it last wrote, the ruleset it last loaded) and only runs commands for
 * differences, so the agent can call it on every reconcile. Every command goes through `Exec`.
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
import { NFT_TABLES, renderNftDelete, renderNftRuleset } from '../../core/nft-rules.ts';
import type { Exec } from './exec.ts';
import { METADATA_ADDR, type LocalNetwork, type LocalPort, type LocalVpn, type NetworkHost, type Overlay } from './network.ts';
import { planFdb, VXLAN_PORT, wantedFdb, type FdbEntry } from '../../core/fdb-plan.ts';
import { PolicyRouting, rulesOf } from './linux-routing.ts';
import { Reverter } from './reverter.ts';
import { bridgeMac, gatewayMac } from '../../core/network-macs.ts';
import { GATEWAY_IF, renderGatewayNft, UPLINK_IF } from '../../core/gateway-ns.ts';

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

/** What `ip -j -d addr show` tells us about one interface. */
interface Link {
  kind?: string;
  /** VXLAN devices: their VNI and tunnel source. */
  vni?: number;
  local?: string;
  master?: string;
  /** Its alias: `mark` when we made it. */
  alias?: string;
  mtu: number;
  up: boolean;
  mac: string;
  /** IPv4 addresses as `addr/prefix` → label. */
  addrs: Map<string, string>;
}

type Links = Map<string, Link>;

/** Everything rendered for one network, before any change is made. */
interface Plan {
  net: LocalNetwork;
  conf: string;
  nsNft: string;
  hosts: string;
  names: string;
}

export class LinuxNetworkHost implements NetworkHost {
  private readonly exec: Exec;
  private readonly log: (m: string) => void;
  private readonly prefix: string;
  private readonly mark: string;
  private readonly netnsPrefix: string;
  private readonly metadataPort: number;
  private readonly meshInterface: string | undefined;
  private readonly resolvFile: string | undefined;
  /** The ruleset text last loaded, so an unchanged ruleset is not reloaded. */
  private lastNft?: string;
  /** The same, per gateway namespace. */
  private readonly lastNsNft = new Map<string, string>();
  private readonly routing: PolicyRouting;
  private readonly dnsmasq: DnsmasqProcesses;
  private forwardingOn = false;
  /** Links and namespaces named like ours but not marked: said once that they are left alone. */
  private readonly leftAlone = new Set<string>();
  /** apply/teardown never interleave: each reads the host state the previous one left. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: LinuxNetworkHostOptions) {
    this.exec = opts.exec;
    // Absolute: the paths end up in dnsmasq's config, which it reads from its own cwd.
    this.log = opts.log ?? (() => {});
    this.prefix = opts.prefix ?? 'bt';
    this.mark = opts.mark ?? 'butter';
    this.netnsPrefix = opts.netnsPrefix ?? 'butter-';
    this.routing = new PolicyRouting(opts.exec);
    // Absolute: the paths end up in dnsmasq's config, which it reads from its own cwd.
    this.dnsmasq = new DnsmasqProcesses({ exec: opts.exec, stateDir: resolve(opts.stateDir), procDir: opts.procDir ?? '/proc', bin: opts.dnsmasqBin ?? 'dnsmasq', log: this.log });
    this.metadataPort = opts.metadataPort ?? 80;
    this.meshInterface = opts.meshInterface;
    this.resolvFile = opts.resolvFile;
  }

  /** The gateway namespace of a network on this host. */
  netnsOf(network: string): string {
    return `${this.netnsPrefix}${network}`;
  }

  apply(networks: readonly LocalNetwork[]): Promise<void> {
    return this.serialize(() => this.doApply(networks));
  }

  teardown(): Promise<void> {
    return this.serialize(() => this.doTeardown());
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => {});
    return p;
  }

  private async doApply(networks: readonly LocalNetwork[]): Promise<void> {
    // Render and validate everything first: bad input changes nothing on the host.
    checkUnique(networks);
    const ruleset = renderNftRuleset(networks, { metadataPort: this.metadataPort, ...(this.meshInterface ? { mesh: this.meshInterface } : {}) });
    const plans = networks.map((net) => this.plan(net));

    // Firewall first: rules match interfaces by name, so they can exist before the taps,
    // and a tap never exists without its anti-spoofing rules.
    await this.applyNft(ruleset);
    if (networks.some((n) => n.nat || n.vpn)) await this.enableForwarding();

    const links = await this.readLinks();
    const namespaces = await this.readNamespaces();
    const errors: unknown[] = [];
    // Networks this apply tried to create and rolled back: they get no routing rules. A network
    // that existed keeps its own even when this apply failed on it.
    const rolledBack = new Set<string>();
    for (const plan of plans) {
      // One broken network must not stop the others from converging.
      const existed = namespaces.has(this.netnsOf(plan.net.name));
      try {
        await this.applyNetwork(plan, links, namespaces);
      } catch (err) {
        errors.push(err);
        if (!existed) rolledBack.add(plan.net.name);
      }
    }
    const standing = networks.filter((n) => !rolledBack.has(n.name));
    await this.collectGarbage(networks, links, namespaces, standing);
    await this.routing.routeHost(standing);
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `${errors.length} networks failed to apply`);
  }

  private plan(net: LocalNetwork): Plan {
    const files = this.dnsmasq.filesOf(net.name);
    return {
      net,
      // dnsmasq serves the namespace's gateway interface.
      conf: renderDnsmasqConf({ ...net, bridge: GATEWAY_IF, ...(this.resolvFile ? { resolvFile: this.resolvFile } : {}) }, files),
      nsNft: renderGatewayNft({ gateway: net.gateway, nat: net.nat, uplink: net.uplink, metadataPort: this.metadataPort }),
      hosts: renderDhcpHosts(net.ports),
      names: renderDnsHosts(net.name, [...net.ports, ...(net.remoteNames ?? [])]),
    };
  }

  /** Anything this call creates for the network is removed again if a later step fails. */
  private async applyNetwork(plan: Plan, links: Links, namespaces: Set<string>): Promise<void> {
    const rev = new Reverter();
    try {
      await this.ensureBridge(plan.net, links, rev);
      const gatewayCreated = await this.ensureGateway(plan, links, namespaces, rev);
      for (const port of plan.net.ports) await this.ensurePort(port, plan.net, links, rev);
      if (plan.net.overlay) await this.ensureOverlay(plan.net, plan.net.overlay, links, rev);
      if (plan.net.vpn) await this.ensureVpn(plan.net, plan.net.vpn, links, rev);
      const { net } = plan;
      await this.dnsmasq.ensure({ network: net.name, netns: this.netnsOf(net.name), conf: plan.conf, hosts: plan.hosts, names: plan.names, ports: net.ports }, gatewayCreated, rev);
      rev.done();
    } catch (err) {
      this.log(`network ${plan.net.name}: apply failed, undoing what was created: ${String(err)}`);
      await rev.revert();
      throw err;
    }
  }

  /**
   * The network's bridge: the VMs' taps, the VXLAN port and the gateway namespace's port. It
   * has no address: the host takes no part in the network (the namespace does).
   */
  private async ensureBridge(net: LocalNetwork, links: Links, rev: Reverter): Promise<void> {
    const br = net.bridge;
    // A fixed MAC, and not the gateway's: frames for the gateway must go on to its port, not
    // up into the host; and taps coming and going would otherwise change it.
    const mac = bridgeMac(net.name);
    let link = links.get(br);
    if (!link) {
      await this.ip('link', 'add', 'name', br, 'address', mac, 'mtu', String(net.mtu), 'type', 'bridge');
      rev.add(() => this.ip('link', 'del', br));
      this.log(`created bridge ${br} for network ${net.name}`);
      link = { kind: 'bridge', mtu: net.mtu, up: false, mac, addrs: new Map() };
      links.set(br, link);
    } else if (link.kind !== 'bridge') {
      throw new Error(`${br} exists and is a ${link.kind ?? 'plain'} interface, not a bridge`);
    }
    if (link.mtu !== net.mtu) await this.ip('link', 'set', 'dev', br, 'mtu', String(net.mtu));
    if (link.mac !== mac) await this.ip('link', 'set', 'dev', br, 'address', mac);
    // Addresses an older Butter put on the bridge: the gateway lives in the namespace now.
    for (const addr of link.addrs.keys()) await this.ip('addr', 'del', addr, 'dev', br);
    const changes = [...this.marking(link), ...(link.up ? [] : ['up'])];
    if (changes.length > 0) await this.ip('link', 'set', 'dev', br, ...changes);
  }

  /** `alias MARK` when the link does not carry our mark yet (made just now, or by a Butter from before marks). */
  private marking(link: Link): string[] {
    return link.alias === this.mark ? [] : ['alias', this.mark];
  }

  // --- the gateway namespace ---

  /**
   * The network's gateway namespace (see core/gateway-ns.ts): `gw0` on the bridge with the
   * gateway's address and MAC and the metadata address, `up0` linked to the host, its
   * ruleset, and the host's route back for metadata answers. Returns whether it was created
   * (a running dnsmasq would be bound to interfaces that are gone).
   */
  private async ensureGateway(plan: Plan, links: Links, namespaces: Set<string>, rev: Reverter): Promise<boolean> {
    const net = plan.net;
    const ns = this.netnsOf(net.name);
    const created = !namespaces.has(ns);
    if (created) {
      await this.ip('netns', 'add', ns);
      rev.add(() => this.ip('netns', 'del', ns));
      namespaces.add(ns);
      this.lastNsNft.delete(ns);
      // Its lo carries our mark: that is how garbage collection knows the namespace is ours.
      await this.ip('-n', ns, 'link', 'set', 'lo', 'alias', this.mark, 'up');
      // Metadata is forwarded from gw0 to up0, egress too.
      await this.exec.run('ip', ['netns', 'exec', ns, 'sysctl', '-w', 'net.ipv4.ip_forward=1']);
      this.log(`created gateway namespace ${ns} for network ${net.name}`);
    }
    const inside = await this.readLinks(ns);
    if (!created && inside.get('lo')?.alias !== this.mark) await this.ip('-n', ns, 'link', 'set', 'lo', 'alias', this.mark);
    const prefix = net.cidr.split('/')[1]!;

    // gw0: a veth whose host end is a bridge port.
    const port = await this.ensureNsVeth(net.gatewayPort, GATEWAY_IF, ns, links, inside, rev);
    await this.enslave(net.gatewayPort, port, net, true);
    // dnsmasq binds by address label: the metadata address gets its own, so dnsmasq
    // (interface=gw0) binds only the gateway.
    await this.ensureNsLink(ns, GATEWAY_IF, inside.get(GATEWAY_IF)!, { mac: gatewayMac(net.name), mtu: net.mtu, addrs: new Map([[`${net.gateway}/${prefix}`, GATEWAY_IF], [`${METADATA_ADDR}/32`, `${GATEWAY_IF}:m`]]) });

    // up0: a veth to the host, a /30 from UPLINK_CIDR.
    const u = net.uplink;
    const uplink = await this.ensureNsVeth(u.device, UPLINK_IF, ns, links, inside, rev);
    const rootAddr = `${u.root}/30`;
    for (const have of uplink.addrs.keys()) if (have !== rootAddr) await this.ip('addr', 'del', have, 'dev', u.device);
    if (!uplink.addrs.has(rootAddr)) await this.ip('addr', 'add', rootAddr, 'dev', u.device);
    const uplinkChanges = [...this.marking(uplink), ...(uplink.up ? [] : ['up'])];
    if (uplinkChanges.length > 0) await this.ip('link', 'set', 'dev', u.device, ...uplinkChanges);
    await this.ensureNsLink(ns, UPLINK_IF, inside.get(UPLINK_IF)!, { addrs: new Map([[`${u.ns}/30`, UPLINK_IF]]) });
    const routes = (await this.exec.run('ip', ['-n', ns, '-j', 'route', 'show', 'default'])).stdout.trim();
    if (!((routes ? JSON.parse(routes) : []) as { gateway?: string }[]).some((r) => r.gateway === u.root)) {
      await this.ip('-n', ns, 'route', 'replace', 'default', 'via', u.root, 'dev', UPLINK_IF);
    }
    // The host's answers to the network's guests (metadata) go back up the link.
    await this.routing.ensureTable(u.table, new Map([[`unicast default ${u.device}`, ['default', 'via', u.ns, 'dev', u.device]]]));

    if (this.lastNsNft.get(ns) !== plan.nsNft) {
      await this.exec.run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: plan.nsNft });
      this.lastNsNft.set(ns, plan.nsNft);
    }
    return created;
  }

  /**
   * A veth pair from the host (`hostEnd`) into the namespace (`nsEnd`), made if missing, or
   * made again if one end is gone or is not a veth. Returns the host end; both ends are in
   * `links`/`inside` afterwards.
   */
  private async ensureNsVeth(hostEnd: string, nsEnd: string, ns: string, links: Links, inside: Links, rev: Reverter): Promise<Link> {
    const have = links.get(hostEnd);
    if (have && have.kind === 'veth' && inside.has(nsEnd)) return have;
    if (have) {
      await this.ip('link', 'del', hostEnd);
      links.delete(hostEnd);
    }
    await this.ip('link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', nsEnd, 'netns', ns);
    rev.add(() => this.ip('link', 'del', hostEnd));
    const made: Link = { kind: 'veth', mtu: 0, up: false, mac: '', addrs: new Map() };
    links.set(hostEnd, made);
    inside.set(nsEnd, { ...made, addrs: new Map() });
    return made;
  }

  /** An interface inside a gateway namespace: its MAC, MTU and addresses (label → address), up. */
  private async ensureNsLink(ns: string, name: string, link: Link, want: { mac?: string; mtu?: number; addrs: Map<string, string> }): Promise<void> {
    const changes: string[] = [];
    if (want.mac && link.mac !== want.mac) changes.push('address', want.mac);
    if (want.mtu && link.mtu !== want.mtu) changes.push('mtu', String(want.mtu));
    if (changes.length > 0) await this.ip('-n', ns, 'link', 'set', 'dev', name, ...changes);
    for (const [addr, label] of link.addrs) {
      if (want.addrs.get(addr) !== label) await this.ip('-n', ns, 'addr', 'del', addr, 'dev', name);
    }
    for (const [addr, label] of want.addrs) {
      if (link.addrs.get(addr) !== label) await this.ip('-n', ns, 'addr', 'add', addr, 'dev', name, 'label', label);
    }
    if (!link.up) await this.ip('-n', ns, 'link', 'set', 'dev', name, 'up');
  }

  private async ensurePort(port: LocalPort, net: LocalNetwork, links: Links, rev: Reverter): Promise<void> {
    const link = links.get(port.tap);
    if (!link) {
      // Persistent tap: it outlives QEMU restarts; QEMU opens it by name.
      await this.ip('tuntap', 'add', 'dev', port.tap, 'mode', 'tap');
      rev.add(() => this.ip('link', 'del', port.tap));
      await this.ip('link', 'set', 'dev', port.tap, 'alias', this.mark, 'mtu', String(net.mtu), 'master', net.bridge, 'up');
      this.log(`created tap ${port.tap} on ${net.bridge}`);
      return;
    }
    if (link.kind === 'bridge') throw new Error(`port ${port.tap} is a bridge`);
    // An existing interface of another kind (e.g. a veth) is used as is: only enslaved, and
    // not marked (not ours to delete). A tap of ours from before marks is.
    await this.enslave(port.tap, link, net, link.kind === 'tun' && port.tap.startsWith(this.prefix));
  }

  /** Makes an existing port of the network's bridge match: its MTU, its master, up; and our mark when `ours`. */
  private async enslave(name: string, link: Link, net: LocalNetwork, ours = false): Promise<void> {
    const changes: string[] = ours ? this.marking(link) : [];
    if (link.mtu !== net.mtu) changes.push('mtu', String(net.mtu));
    if (link.master !== net.bridge) changes.push('master', net.bridge);
    if (!link.up) changes.push('up');
    if (changes.length > 0) await this.ip('link', 'set', 'dev', name, ...changes);
  }

  // --- VXLAN over the mesh ---

  /**
   * The network's VXLAN port on its bridge, tunnelling from this node's mesh address, and
   * its forwarding entries as the control plane sees the network (`core/fdb-plan.ts`).
   * No learning: where each MAC lives is known, not guessed from flooded traffic.
   */
  private async ensureOverlay(net: LocalNetwork, o: Overlay, links: Links, rev: Reverter): Promise<void> {
    let link = links.get(o.device);
    if (link && (link.kind !== 'vxlan' || link.vni !== o.vni || link.local !== o.local)) {
      if (link.kind !== 'vxlan' || !o.device.startsWith(this.prefix)) throw new Error(`${o.device} exists and is not our VXLAN device for VNI ${o.vni}`);
      // The VNI or the node's mesh address changed: neither can be changed in place.
      await this.ip('link', 'del', o.device);
      links.delete(o.device);
      link = undefined;
    }
    if (!link) {
      await this.ip('link', 'add', o.device, 'type', 'vxlan', 'id', String(o.vni), 'local', o.local, 'dstport', String(VXLAN_PORT), 'nolearning', 'noudpcsum');
      rev.add(() => this.ip('link', 'del', o.device));
      await this.ip('link', 'set', 'dev', o.device, 'alias', this.mark, 'mtu', String(net.mtu), 'master', net.bridge, 'up');
      this.log(`created VXLAN ${o.device} (VNI ${o.vni}) on ${net.bridge}`);
    } else {
      await this.enslave(o.device, link, net, true);
    }
    for (const cmd of planFdb(o.device, await this.readFdb(o.device), wantedFdb(o.remotes))) await this.exec.run('bridge', cmd);
  }

  /** The device's own (VXLAN-level) entries: those with a tunnel destination. */
  private async readFdb(device: string): Promise<FdbEntry[]> {
    const out = (await this.exec.run('bridge', ['-j', 'fdb', 'show', 'dev', device])).stdout.trim();
    return ((out ? JSON.parse(out) : []) as { mac: string; dst?: string }[]).filter((e) => e.dst).map((e) => ({ mac: e.mac.toLowerCase(), dst: e.dst! }));
  }

  // --- VPN router ---

  /**
   * The network's VPN router (see `LocalVpn`): a veth pair on the bridge, its host end with
   * the router's MAC and address, proxy ARP for the peers, and a routing table that sends the
   * network to the router end and each peer into the mesh interface (nothing else: a
   * blackhole default, so neither side reaches beyond the other).
   */
  private async ensureVpn(net: LocalNetwork, v: LocalVpn, links: Links, rev: Reverter): Promise<void> {
    let router = links.get(v.router);
    if (router && router.kind !== 'veth') throw new Error(`${v.router} exists and is a ${router.kind ?? 'plain'} interface, not our veth`);
    if (!router) {
      await this.ip('link', 'add', v.router, 'type', 'veth', 'peer', 'name', v.port);
      rev.add(() => this.ip('link', 'del', v.router));
      // proxy_arp: answer for the peers (their route leaves by another interface).
      // arp_ignore=1: never for the host's other addresses (the gateway!) on this port.
      // rp_filter=0: the VMs' addresses route via the bridge, not this end.
      for (const [key, value] of [['proxy_arp', '1'], ['arp_ignore', '1'], ['rp_filter', '0']]) {
        await this.exec.run('sysctl', ['-w', `net.ipv4.conf.${v.router}.${key}=${value}`]);
      }
      this.log(`created VPN router ${v.router} on ${net.bridge}`);
      router = { kind: 'veth', mtu: 0, up: false, mac: '', addrs: new Map() };
      links.set(v.router, router);
      links.set(v.port, { kind: 'veth', mtu: 0, up: false, mac: '', addrs: new Map() });
    }
    if (router.mac !== v.mac || router.mtu !== net.mtu || !router.up || router.alias !== this.mark) {
      await this.ip('link', 'set', 'dev', v.router, ...this.marking(router), 'address', v.mac, 'mtu', String(net.mtu), 'up');
    }
    await this.enslave(v.port, links.get(v.port)!, net, true);
    const prefix = net.cidr.split('/')[1]!;
    const addr = `${v.address}/${prefix}`;
    for (const have of router.addrs.keys()) if (have !== addr) await this.ip('addr', 'del', have, 'dev', v.router);
    // No prefix route: the network's route in the main table stays the bridge's.
    if (!router.addrs.has(addr)) await this.ip('addr', 'add', addr, 'dev', v.router, 'noprefixroute');

    await this.routing.ensureTable(
      v.table,
      new Map<string, string[]>([
        [`unicast ${net.cidr} ${v.router}`, [net.cidr, 'dev', v.router, 'src', v.address]],
        ['blackhole default ', ['blackhole', 'default']],
        ...v.peers.map((p): [string, string[]] => [`unicast ${p} ${v.mesh}`, [`${p}/32`, 'dev', v.mesh]]),
      ]),
    );
  }

  // --- nftables and sysctl ---

  private async applyNft(ruleset: string): Promise<void> {
    // Reload when the text changed, or when someone else dropped our tables (e.g. a flush).
    if (ruleset === this.lastNft && (await this.nftTablesPresent())) return;
    await this.exec.run('nft', ['-f', '-'], { input: ruleset });
    this.lastNft = ruleset;
  }

  private async nftTablesPresent(): Promise<boolean> {
    const out = (await this.exec.run('nft', ['list', 'tables'])).stdout.split('\n').map((l) => l.trim());
    return NFT_TABLES.every((t) => out.includes(`table ${t}`));
  }

  /** Only NAT egress and VPN routers need routing; never switched off again, other software may rely on it. */
  private async enableForwarding(): Promise<void> {
    if (this.forwardingOn) return;
    const now = (await this.exec.run('sysctl', ['-n', 'net.ipv4.ip_forward'])).stdout.trim();
    if (now !== '1') await this.exec.run('sysctl', ['-w', 'net.ipv4.ip_forward=1']);
    this.forwardingOn = true;
  }

  // --- garbage collection and teardown ---

  /** `standing`: the networks that exist after this apply (not rolled back); only theirs get routing rules. */
  private async collectGarbage(networks: readonly LocalNetwork[], links: Links, namespaces: Set<string>, standing: readonly LocalNetwork[]): Promise<void> {
    const names = new Set(networks.map((n) => n.name));
    for (const name of await this.dnsmasq.known()) if (!names.has(name)) await this.dnsmasq.remove(name);
    const nsWanted = new Set(networks.map((n) => this.netnsOf(n.name)));
    for (const ns of namespaces) {
      if (!ns.startsWith(this.netnsPrefix) || nsWanted.has(ns) || !(await this.ourNamespace(ns))) continue;
      // Its interfaces go with it, and their host ends (veth pairs) with them.
      await this.ip('netns', 'del', ns);
      namespaces.delete(ns);
      this.lastNsNft.delete(ns);
      this.log(`deleted gateway namespace ${ns}`);
    }
    const keep = new Set(
      networks.flatMap((n) => [n.bridge, n.gatewayPort, n.uplink.device, ...n.ports.map((p) => p.tap), ...(n.overlay ? [n.overlay.device] : []), ...(n.vpn ? [n.vpn.router, n.vpn.port] : [])]),
    );
    // Host ends of a deleted namespace's veths went with it: deleting them again may fail (see deleteOurLinks).
    await this.deleteOurLinks(links, (name) => !keep.has(name));
    await this.routing.collectRules(standing.flatMap((n) => rulesOf(n)));
  }

  /** Taps and VXLAN ports before bridges: a bridge goes only once nothing of ours hangs off it. */
  private async deleteOurLinks(links: Links, unwanted: (name: string) => boolean): Promise<void> {
    for (const kind of ['tun', 'vxlan', 'veth', 'bridge']) {
      for (const [name, link] of links) {
        if (link.kind !== kind || !name.startsWith(this.prefix) || !unwanted(name)) continue;
        if (link.alias !== this.mark) {
          this.leaveAlone(`${kind === 'tun' ? 'tap' : kind} ${name}`);
          continue;
        }
        // A veth goes with its peer: the second end of a pair is already gone.
        await this.exec.run('ip', ['link', 'del', name], { allowFail: kind === 'veth' });
        links.delete(name);
        this.log(`deleted ${kind === 'tun' ? 'tap' : kind} ${name}`);
      }
    }
  }

  private async doTeardown(): Promise<void> {
    await this.dnsmasq.removeAll();
    for (const ns of await this.readNamespaces()) if (ns.startsWith(this.netnsPrefix) && (await this.ourNamespace(ns))) await this.ip('netns', 'del', ns);
    this.lastNsNft.clear();
    await this.deleteOurLinks(await this.readLinks(), () => true);
    await this.routing.collectRules([]);
    await this.exec.run('nft', ['-f', '-'], { input: renderNftDelete() });
    this.lastNft = undefined;
  }

  /** A namespace named like ours is ours when its lo carries our mark (see ensureGateway). */
  private async ourNamespace(ns: string): Promise<boolean> {
    if ((await this.readLinks(ns)).get('lo')?.alias === this.mark) return true;
    this.leaveAlone(`namespace ${ns}`);
    return false;
  }

  private leaveAlone(what: string): void {
    if (this.leftAlone.has(what)) return;
    this.leftAlone.add(what);
    this.log(`left ${what} alone: named like Butter's but not marked ${this.mark}, so not made by this agent (delete it by hand if it is a leftover)`);
  }

  // --- observation ---

  /** Gateway namespaces and any others (`ip netns` names are host-wide). */
  private async readNamespaces(): Promise<Set<string>> {
    const out = (await this.exec.run('ip', ['-j', 'netns', 'list'])).stdout.trim();
    return new Set(((out ? JSON.parse(out) : []) as { name: string }[]).map((n) => n.name));
  }

  /** Interfaces of the host, or of a namespace. */
  private async readLinks(ns?: string): Promise<Links> {
    const out = (await this.exec.run('ip', [...(ns ? ['-n', ns] : []), '-j', '-d', 'addr', 'show'])).stdout.trim();
    const links: Links = new Map();
    for (const l of (out ? JSON.parse(out) : []) as IpAddrJson[]) {
      const addrs = new Map<string, string>();
      for (const a of l.addr_info ?? []) {
        if (a.family === 'inet') addrs.set(`${a.local}/${a.prefixlen}`, a.label ?? l.ifname);
      }
      const data = l.linkinfo?.info_data;
      links.set(l.ifname, {
        kind: l.linkinfo?.info_kind,
        ...(data?.id !== undefined ? { vni: data.id } : {}),
        ...(data?.local !== undefined ? { local: data.local } : {}),
        master: l.master,
        ...(l.ifalias !== undefined ? { alias: l.ifalias } : {}),
        mtu: l.mtu,
        up: (l.flags ?? []).includes('UP'),
        mac: (l.address ?? '').toLowerCase(),
        addrs,
      });
    }
    return links;
  }

  private ip(...args: string[]): Promise<unknown> {
    return this.exec.run('ip', args);
  }
}

/** The subset of `ip -j -d addr show` we read. */
interface IpAddrJson {
  ifname: string;
  flags?: string[];
  mtu: number;
  master?: string;
  ifalias?: string;
  address?: string;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string } };
  addr_info?: { family: string; local: string; prefixlen: number; label?: string }[];
}

function checkUnique(networks: readonly LocalNetwork[]): void {
  const seen = new Set<string>();
  const once = (kind: string, v: string): void => {
    if (seen.has(`${kind}:${v}`)) throw new Error(`duplicate ${kind} ${v}`);
    seen.add(`${kind}:${v}`);
  };
  for (const n of networks) {
    once('network', n.name);
    once('interface', n.bridge);
    once('interface', n.gatewayPort);
    once('interface', n.uplink.device);
    // Uplinks come from the VNI modulo 16,384 (core/gateway-ns.ts): two may meet on one host.
    once('uplink address', n.uplink.root);
    for (const p of n.ports) once('interface', p.tap);
    if (n.overlay) once('interface', n.overlay.device);
    if (n.vpn) {
      once('interface', n.vpn.router);
      once('interface', n.vpn.port);
      once('VPN table', String(n.vpn.table));
    }
  }
}
