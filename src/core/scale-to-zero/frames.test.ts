import assert from 'node:assert/strict';
import { test } from 'node:test';
import { judgeFrame, macBytes, withChecksums } from './frames.ts';

const VM = { mac: '52:54:00:12:34:56', ip: '10.0.0.5' };
const CLIENT_MAC = '52:54:00:aa:bb:cc';

function eth(dst: string, src: string, type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(14);
  macBytes(dst).copy(h, 0);
  macBytes(src).copy(h, 6);
  h.writeUInt16BE(type, 12);
  return Buffer.concat([h, payload]);
}

function ipv4(src: string, dst: string, proto: number, l4: Buffer, fragOffset = 0): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + l4.length, 2);
  h.writeUInt16BE(fragOffset, 6);
  h[8] = 64;
  h[9] = proto;
  Buffer.from(src.split('.').map(Number)).copy(h, 12);
  Buffer.from(dst.split('.').map(Number)).copy(h, 16);
  return Buffer.concat([h, l4]);
}

function tcp(dport: number, flags: number): Buffer {
  const t = Buffer.alloc(20);
  t.writeUInt16BE(40000, 0);
  t.writeUInt16BE(dport, 2);
  t[12] = 0x50;
  t[13] = flags;
  return t;
}

function udp(dport: number): Buffer {
  const u = Buffer.alloc(12);
  u.writeUInt16BE(5353, 0);
  u.writeUInt16BE(dport, 2);
  u.writeUInt16BE(12, 4);
  return u;
}

function arpRequest(senderIp: string, targetIp: string, op = 1): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0);
  a.writeUInt16BE(0x0800, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(op, 6);
  macBytes(CLIENT_MAC).copy(a, 8);
  Buffer.from(senderIp.split('.').map(Number)).copy(a, 14);
  Buffer.from(targetIp.split('.').map(Number)).copy(a, 24);
  return eth('ff:ff:ff:ff:ff:ff', CLIENT_MAC, 0x0806, a);
}

test('a TCP SYN to the VM wakes it, naming the port and the client', () => {
  const v = judgeFrame(eth(VM.mac, CLIENT_MAC, 0x0800, ipv4('10.0.0.9', VM.ip, 6, tcp(8080, 0x02))), VM);
  assert.deepEqual(v, { kind: 'wake', trigger: 'tcp', port: 8080, from: '10.0.0.9' });
});

test('a UDP datagram to the VM wakes it', () => {
  const v = judgeFrame(eth(VM.mac, CLIENT_MAC, 0x0800, ipv4('10.0.0.9', VM.ip, 17, udp(53))), VM);
  assert.deepEqual(v, { kind: 'wake', trigger: 'udp', port: 53, from: '10.0.0.9' });
});

test('TCP that opens no connection does not wake it: ACK, SYN-ACK, RST, FIN', () => {
  for (const flags of [0x10, 0x12, 0x04, 0x06, 0x11, 0x18]) {
    const v = judgeFrame(eth(VM.mac, CLIENT_MAC, 0x0800, ipv4('10.0.0.9', VM.ip, 6, tcp(80, flags))), VM);
    assert.equal(v.kind, 'ignore', `flags 0x${flags.toString(16)}`);
  }
});

test('broadcast, multicast and frames to another MAC or address do not wake it', () => {
  const syn = tcp(80, 0x02);
  for (const [dstMac, dstIp] of [
    ['ff:ff:ff:ff:ff:ff', VM.ip],
    ['01:00:5e:00:00:fb', VM.ip],
    ['52:54:00:99:99:99', VM.ip],
    [VM.mac, '10.0.0.6'],
    [VM.mac, '10.0.0.255'],
  ] as const) {
    assert.equal(judgeFrame(eth(dstMac, CLIENT_MAC, 0x0800, ipv4('10.0.0.9', dstIp, 6, syn)), VM).kind, 'ignore', `${dstMac} ${dstIp}`);
  }
});

test('ICMP, IPv6 (neighbour discovery), later fragments and runts do not wake it', () => {
  assert.equal(judgeFrame(eth(VM.mac, CLIENT_MAC, 0x0800, ipv4('10.0.0.9', VM.ip, 1, Buffer.alloc(8))), VM).kind, 'ignore');
  assert.equal(judgeFrame(eth('33:33:ff:34:56:00', CLIENT_MAC, 0x86dd, Buffer.alloc(72)), VM).kind, 'ignore');
  assert.equal(judgeFrame(eth(VM.mac, CLIENT_MAC, 0x0800, ipv4('10.0.0.9', VM.ip, 17, udp(53), 0x00b9)), VM).kind, 'ignore');
  assert.equal(judgeFrame(Buffer.alloc(10), VM).kind, 'ignore');
  assert.equal(judgeFrame(eth(VM.mac, CLIENT_MAC, 0x0800, Buffer.alloc(10)), VM).kind, 'ignore');
  assert.equal(judgeFrame(eth(VM.mac, CLIENT_MAC, 0x0800, ipv4('10.0.0.9', VM.ip, 6, Buffer.alloc(8))), VM).kind, 'ignore');
});

test('an ARP request for its address is answered with its MAC, to the asker; nothing wakes', () => {
  const v = judgeFrame(arpRequest('10.0.0.9', VM.ip), VM);
  assert.equal(v.kind, 'arp-reply');
  const f = (v as { frame: Buffer }).frame;
  assert.equal(f.length, 60);
  assert.deepEqual(f.subarray(0, 6), macBytes(CLIENT_MAC), 'to the asker');
  assert.deepEqual(f.subarray(6, 12), macBytes(VM.mac), 'from the VM');
  assert.equal(f.readUInt16BE(12), 0x0806);
  assert.equal(f.readUInt16BE(20), 2, 'a reply');
  assert.deepEqual(f.subarray(22, 28), macBytes(VM.mac), 'sender MAC');
  assert.deepEqual([...f.subarray(28, 32)], [10, 0, 0, 5], 'sender IP: the VM');
  assert.deepEqual(f.subarray(32, 38), macBytes(CLIENT_MAC), 'target MAC');
  assert.deepEqual([...f.subarray(38, 42)], [10, 0, 0, 9], 'target IP: the asker');
});

test('ARP for another address, ARP replies and other hardware types are ignored', () => {
  assert.equal(judgeFrame(arpRequest('10.0.0.9', '10.0.0.6'), VM).kind, 'ignore');
  assert.equal(judgeFrame(arpRequest('10.0.0.9', VM.ip, 2), VM).kind, 'ignore');
  const odd = arpRequest('10.0.0.9', VM.ip);
  odd.writeUInt16BE(6, 14);
  assert.equal(judgeFrame(odd, VM).kind, 'ignore');
});

test('withChecksums: a SYN with a partial checksum (offload) gets its IP and TCP checksums computed', () => {
  // A real SYN 10.0.0.9:40000 -> 10.0.0.5:8080 (seq 1, window 64240, no options); its checksums as Python's reference (RFC 1071) computes them.
  const frame = eth(VM.mac, CLIENT_MAC, 0x0800, ipv4('10.0.0.9', VM.ip, 6, tcp(8080, 0x02)));
  const l3 = 14;
  frame.writeUInt16BE(1, l3 + 20 + 4 + 2); // seq = 1
  frame.writeUInt16BE(64240, l3 + 20 + 14); // window
  frame.writeUInt16BE(0x1234, l3 + 20 + 16); // a partial (pseudo-header only) checksum, as offload leaves it
  const fixed = withChecksums(frame);
  assert.notEqual(fixed, frame, 'a copy');
  assert.equal(fixed.readUInt16BE(l3 + 10), 0x66c3, 'IPv4 header checksum');
  assert.equal(fixed.readUInt16BE(l3 + 20 + 16), 0xe512, 'TCP checksum');
  // Verifying: the sum over a correct header (and segment with pseudo-header) is 0.
  assert.deepEqual(withChecksums(fixed), fixed, 'idempotent');
  const arp = judgeFrame(Buffer.concat([eth('ff:ff:ff:ff:ff:ff', CLIENT_MAC, 0x0806, Buffer.alloc(28))]), VM);
  assert.equal(arp.kind, 'ignore');
  const v6 = eth(VM.mac, CLIENT_MAC, 0x86dd, Buffer.alloc(40));
  assert.equal(withChecksums(v6), v6, 'not IPv4: as it is');
});
