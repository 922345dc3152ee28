/**
 * The activator's frame logic (issue 16, scale to zero), pure: what a frame that reached an
 * idle-suspended VM's tap means. While the VM sleeps, the agent holds its tap (socat, see
 * agent/host/activator.ts) and is handed every frame sent to it, one datagram each. Frames
 * reach the tap only after the bridge's and the paths' filters (nft-rules.ts, nft-paths.ts),
 * so whatever arrives here was allowed to reach the VM.
 *
 * - An ARP request for the VM's own address is answered with its own MAC, so a client whose
 *   ARP entry expired still sends its SYN (the bridge's anti-spoofing admits the reply: it is
 *   the VM's own MAC and address on its own tap).
 * - A TCP SYN or a UDP datagram to the VM's address and MAC wakes it.
 * - Nothing else does: ARP otherwise, broadcasts, multicast, IPv6 (neighbour discovery
 *   included), ICMP, segments of connections that are not new, later IP fragments.
 */
import { intToIp } from '../ipv4.ts';

const ETH_HEADER = 14;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_ARP = 0x0806;
const PROTO_TCP = 6;
const PROTO_UDP = 17;
/** Ethernet's minimum frame (without its checksum): a shorter one is padded. */
const MIN_FRAME = 60;

/** The VM the activator stands in for: one NIC's MAC (`52:54:00:…`) and IPv4 address. */
export interface ActivatedNic {
  mac: string;
  ip: string;
}

export type FrameVerdict =
  | { kind: 'ignore'; why: string }
  | { kind: 'arp-reply'; frame: Buffer }
  | { kind: 'wake'; trigger: 'tcp' | 'udp'; port: number; from: string };

export function macBytes(mac: string): Buffer {
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new Error(`not a MAC address: ${mac}`);
  return Buffer.from(parts.map((p) => Number.parseInt(p, 16)));
}

function ipBytes(ip: string): Buffer {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`not an IPv4 address: ${ip}`);
  return Buffer.from(parts);
}

/** What to do with one frame sent toward the sleeping VM. */
export function judgeFrame(frame: Buffer, nic: ActivatedNic): FrameVerdict {
  if (frame.length < ETH_HEADER) return { kind: 'ignore', why: 'runt' };
  const mac = macBytes(nic.mac);
  const ip = ipBytes(nic.ip);
  const type = frame.readUInt16BE(12);
  if (type === ETHERTYPE_ARP) return judgeArp(frame, mac, ip);
  if (type !== ETHERTYPE_IPV4) return { kind: 'ignore', why: `ethertype 0x${type.toString(16).padStart(4, '0')}` };
  // Broadcast, multicast, and unicast to another MAC (a bridge floods what it has not learnt).
  if (!frame.subarray(0, 6).equals(mac)) return { kind: 'ignore', why: 'not to its MAC' };
  const l3 = frame.subarray(ETH_HEADER);
  if (l3.length < 20 || l3[0]! >> 4 !== 4) return { kind: 'ignore', why: 'bad IPv4 header' };
  const ihl = (l3[0]! & 0x0f) * 4;
  if (ihl < 20 || l3.length < ihl) return { kind: 'ignore', why: 'bad IPv4 header' };
  if (!l3.subarray(16, 20).equals(ip)) return { kind: 'ignore', why: 'not to its address' };
  // Only the first fragment carries the ports.
  if ((l3.readUInt16BE(6) & 0x1fff) !== 0) return { kind: 'ignore', why: 'later fragment' };
  const from = intToIp(l3.readUInt32BE(12));
  const l4 = l3.subarray(ihl);
  const proto = l3[9];
  if (proto === PROTO_TCP) {
    if (l4.length < 14) return { kind: 'ignore', why: 'short TCP header' };
    const flags = l4[13]!;
    const syn = (flags & 0x02) !== 0, ack = (flags & 0x10) !== 0, rst = (flags & 0x04) !== 0;
    if (!syn || ack || rst) return { kind: 'ignore', why: 'TCP, not a new connection' };
    return { kind: 'wake', trigger: 'tcp', port: l4.readUInt16BE(2), from };
  }
  if (proto === PROTO_UDP) {
    if (l4.length < 8) return { kind: 'ignore', why: 'short UDP header' };
    return { kind: 'wake', trigger: 'udp', port: l4.readUInt16BE(2), from };
  }
  return { kind: 'ignore', why: `IP protocol ${proto}` };
}

function judgeArp(frame: Buffer, mac: Buffer, ip: Buffer): FrameVerdict {
  const arp = frame.subarray(ETH_HEADER);
  // Ethernet/IPv4 ARP only: htype 1, ptype 0x0800, hlen 6, plen 4.
  if (arp.length < 28 || arp.readUInt16BE(0) !== 1 || arp.readUInt16BE(2) !== ETHERTYPE_IPV4 || arp[4] !== 6 || arp[5] !== 4) return { kind: 'ignore', why: 'not Ethernet/IPv4 ARP' };
  if (arp.readUInt16BE(6) !== 1) return { kind: 'ignore', why: 'ARP, not a request' };
  if (!arp.subarray(24, 28).equals(ip)) return { kind: 'ignore', why: 'ARP for another address' };
  const sha = arp.subarray(8, 14);
  const spa = arp.subarray(14, 18);
  return { kind: 'arp-reply', frame: arpReply(mac, ip, Buffer.from(sha), Buffer.from(spa)) };
}

/** An ARP reply from the VM (`mac` is at `ip`) to the asker, padded to Ethernet's minimum. */
export function arpReply(mac: Buffer, ip: Buffer, toMac: Buffer, toIp: Buffer): Buffer {
  const out = Buffer.alloc(MIN_FRAME);
  toMac.copy(out, 0);
  mac.copy(out, 6);
  out.writeUInt16BE(ETHERTYPE_ARP, 12);
  out.writeUInt16BE(1, 14); // Ethernet
  out.writeUInt16BE(ETHERTYPE_IPV4, 16);
  out[18] = 6;
  out[19] = 4;
  out.writeUInt16BE(2, 20); // reply
  mac.copy(out, 22);
  ip.copy(out, 28);
  toMac.copy(out, 32);
  toIp.copy(out, 38);
  return out;
}

/** The Internet checksum (RFC 1071) of `parts`, as one byte string. */
function internetChecksum(parts: readonly Buffer[]): number {
  let sum = 0;
  let odd: number | undefined;
  for (const p of parts) {
    for (const byte of p) {
      if (odd === undefined) odd = byte;
      else {
        sum += (odd << 8) | byte;
        odd = undefined;
      }
    }
  }
  if (odd !== undefined) sum += odd << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * A copy of an IPv4 TCP or UDP frame with its IP, TCP and UDP checksums computed again. A
 * frame read from a tap may carry a partial checksum: the tap keeps the checksum offload its
 * QEMU turned on (TUNSETOFFLOAD, with a virtio header socat does not read), so a packet the
 * host itself sent (a published port's, the host's own) reaches socat with its checksum left
 * for a NIC to finish. Sent again as it is, the guest drops it as corrupt, and the client
 * waits for its retransmit. Other frames are returned as they are.
 */
export function withChecksums(frame: Buffer): Buffer {
  if (frame.length < ETH_HEADER + 20 || frame.readUInt16BE(12) !== ETHERTYPE_IPV4) return frame;
  const out = Buffer.from(frame);
  const l3 = out.subarray(ETH_HEADER);
  const ihl = (l3[0]! & 0x0f) * 4;
  const total = l3.readUInt16BE(2);
  if (l3[0]! >> 4 !== 4 || ihl < 20 || total < ihl || total > l3.length) return frame;
  l3.writeUInt16BE(0, 10);
  l3.writeUInt16BE(internetChecksum([l3.subarray(0, ihl)]), 10);
  if ((l3.readUInt16BE(6) & 0x3fff) !== 0) return out; // a fragment: its L4 checksum spans the others
  const proto = l3[9]!;
  const l4 = l3.subarray(ihl, total);
  const at = proto === PROTO_TCP ? 16 : proto === PROTO_UDP ? 6 : -1;
  if (at < 0 || l4.length < at + 2) return out;
  const pseudo = Buffer.alloc(12);
  l3.copy(pseudo, 0, 12, 20);
  pseudo[9] = proto;
  pseudo.writeUInt16BE(l4.length, 10);
  l4.writeUInt16BE(0, at);
  const sum = internetChecksum([pseudo, l4]);
  l4.writeUInt16BE(proto === PROTO_UDP && sum === 0 ? 0xffff : sum, at);
  return out;
}
