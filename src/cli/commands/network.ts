/** `butter network ...`: private networks (one LAN per network, across every machine). */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import QRCode from 'qrcode';
import type { Network } from '../../api/schemas/network.ts';
import { ENDPOINT } from '../../api/schemas/node.ts';
import { renderClientConf, WG_KEY } from '../../core/wireguard-config.ts';
import { generateKey } from '../../core/wireguard-keys.ts';
import { client, UsageError } from '../config.ts';
import { age, printFields, printJson, printTable } from '../output.ts';

function showNetwork(n: Network): void {
  printFields([
    ['name', n.name],
    ['cidr', n.cidr],
    ['gateway', n.gateway],
    ['mtu', n.mtu],
    ['nat', n.nat ? 'yes' : 'no'],
    ['vms', n.vmCount],
    ['vpn gateway', n.vpnGateway ?? '-'],
    ['vpn peers', n.peerCount],
    // Per node that hosts it, what its agent made of it: ready, pending, or error and why.
    ...(n.nodes.length === 0 ? [['nodes', '-'] as [string, unknown]] : n.nodes.map((h): [string, unknown] => [`node ${h.node}`, h.error ? `${h.state}: ${h.error}` : h.state])),
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
    .option('--idempotency-key <key>', 'the same command run again with the same key (within 24 h) prints the network it made instead of failing on the name')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { cidr?: string; nat: boolean; idempotencyKey?: string; json?: boolean }) => {
      const n = await client().call('createNetwork', { body: { name, ...(o.cidr ? { cidr: o.cidr } : {}), nat: o.nat }, ...(o.idempotencyKey !== undefined ? { idempotencyKey: o.idempotencyKey } : {}) });
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
    .description('remove a private network (refused while VMs or VPN peers are attached)')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      await client().call('deleteNetwork', { params: { name } });
      if (o.json) printJson({ name, deleted: true });
      else process.stdout.write(`network ${name} removed\n`);
    });

  network
    .command('join <name>')
    .description("register a VPN peer (a laptop) and print its wg-quick configuration; its private key is made here and sent nowhere")
    .requiredOption('--peer <peer>', "the peer's name, e.g. laptop")
    .option('--public-key <key>', 'use your own key pair: register this public key (the file then has a placeholder for the private key)')
    .option('--endpoint <host:port>', "where the peer sends to, if not the gateway node's own address (its mesh endpoint, else its address on its default route): a port forward, a DNS name")
    .option('-o, --output <file>', 'write the configuration to this file (mode 0600) instead of standard output')
    .option('--qr', 'also print it as a QR code (the default on a terminal)')
    .option('--no-qr', 'never print a QR code')
    .option('--json', 'print JSON (the peer and its configuration, with the private key)')
    .action(async (name: string, o: { peer: string; publicKey?: string; endpoint?: string; output?: string; qr?: boolean; json?: boolean }) => {
      if (o.publicKey !== undefined && !WG_KEY.test(o.publicKey)) throw new UsageError(`public-key: must be a WireGuard public key (32 bytes, base64), got ${JSON.stringify(o.publicKey)}`);
      if (o.endpoint !== undefined && !ENDPOINT.test(o.endpoint)) throw new UsageError(`endpoint: must be host:port (IPv6 in brackets), got ${JSON.stringify(o.endpoint)}`);
      const key = o.publicKey ? undefined : generateKey();
      const publicKey = o.publicKey ?? key!.publicKey;
      const peer = await client().call('joinNetwork', { params: { name }, body: { name: o.peer, publicKey, ...(o.endpoint ? { endpoint: o.endpoint } : {}) } });
      // A guess the user did not make is said, with the way out (stderr: stdout may be the file).
      if (peer.endpointSource === 'default-route') process.stderr.write(`endpoint ${peer.config.endpoint}: node ${peer.gateway}'s address on its default route; use --endpoint to choose another\n`);
      const conf = renderClientConf(peer.config, key?.privateKey, `Butter network ${name}, VPN peer ${peer.name} (gateway node ${peer.gateway})`);
      if (o.json) return printJson({ ...peer, ...(key ? { privateKey: key.privateKey } : {}), wgQuick: conf });
      if (o.output) {
        writeFileSync(o.output, conf, { mode: 0o600 });
        process.stderr.write(`peer ${peer.name} joined network ${name} at ${peer.ip}; configuration written to ${o.output}\n`);
      } else {
        process.stdout.write(conf);
      }
      if (o.qr ?? process.stdout.isTTY) process.stdout.write(await QRCode.toString(conf, { type: 'terminal', small: true }));
    });

  network
    .command('peers <name>')
    .description("list a network's VPN peers")
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const { items } = await client().call('listNetworkPeers', { params: { name } });
      if (o.json) return printJson(items);
      printTable(['PEER', 'ADDRESS', 'GATEWAY', 'ENDPOINT', 'PUBLIC KEY', 'AGE'], items.map((p) => [p.name, p.ip, p.gateway, p.endpoint, p.publicKey, age(p.createdAt)]));
    });

  network
    .command('revoke <name> <peer>')
    .description('revoke a VPN peer: its tunnel stops at once')
    .option('--json', 'print JSON')
    .action(async (name: string, peer: string, o: { json?: boolean }) => {
      await client().call('revokeNetworkPeer', { params: { name, peer } });
      if (o.json) printJson({ network: name, peer, revoked: true });
      else process.stdout.write(`peer ${peer} of network ${name} revoked\n`);
    });
}
