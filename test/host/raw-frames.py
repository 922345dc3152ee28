#!/usr/bin/env python3
"""Hand-made packets for the host tests (Node has no packet sockets): frames a guest could
send on its tap, the same frames wrapped in VXLAN as a LAN host could send them, and the
listening sides that report which of them arrived.

Every probe carries `BTPROBE:<tag>;` in its payload; listeners print the tags they saw as one
JSON list and stop at `stop` (the control, sent last) or at the deadline.

  send IFACE SRC_MAC FRAMES_JSON            frames out of IFACE (AF_PACKET)
  vxlan HOST PORT VNI SRC_MAC FRAMES_JSON   the frames in VXLAN headers, to HOST:PORT over UDP
  udp HOST PORT TAG                         one datagram (IPv4 or IPv6 HOST)
  sniff IFACE STOP SECONDS                  tags in frames arriving on IFACE
  sniff-out IFACE STOP SECONDS              tags in frames IFACE sends (a tap: to its guest)
  listen PORTS STOP SECONDS                 tags in datagrams to PORTS (comma-separated), v4 and v6

A frame: {"tag", "dstMac", "src", "dst", "proto": "icmp"|"udp"|"tcp"|"arp", "sport", "dport",
"fragment": true (a later fragment: no transport header)}.
"""
import json
import re
import select
import socket
import struct
import sys
import time

PROBE = re.compile(rb'BTPROBE:([A-Za-z0-9_.-]+);')


def mac(s):
    return bytes.fromhex(s.replace(':', ''))


def checksum(data):
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack(f'!{len(data) // 2}H', data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, proto, body, frag_offset=0):
    header = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(body), 0x4242, frag_offset // 8, 64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return header[:10] + struct.pack('!H', checksum(header)) + header[12:] + body


def l4(f, payload):
    proto = f['proto']
    pseudo = lambda n, length: socket.inet_aton(f['src']) + socket.inet_aton(f['dst']) + struct.pack('!BBH', 0, n, length)
    if proto == 'icmp':
        head = struct.pack('!BBHHH', 8, 0, 0, 0x4242, 1)
        return 1, head[:2] + struct.pack('!H', checksum(head + payload)) + head[4:] + payload
    if proto == 'udp':
        length = 8 + len(payload)
        head = struct.pack('!HHHH', f['sport'], f['dport'], length, 0)
        return 17, head[:6] + struct.pack('!H', checksum(pseudo(17, length) + head + payload) or 0xFFFF) + payload
    if proto == 'tcp':
        head = struct.pack('!HHIIBBHHH', f['sport'], f['dport'], 1, 0, 5 << 4, 0x02, 1024, 0, 0)
        return 6, head[:16] + struct.pack('!H', checksum(pseudo(6, 20 + len(payload)) + head + payload)) + head[18:] + payload
    raise ValueError(f'unknown protocol {proto}')


def frame(src_mac, f):
    payload = f'BTPROBE:{f["tag"]};'.encode().ljust(32, b'.')
    if f['proto'] == 'arp':
        # A request for `dst` from `src`; the tag rides in the padding after it.
        body = struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, 1, mac(src_mac), socket.inet_aton(f['src']), b'\0' * 6, socket.inet_aton(f['dst'])) + payload
        return mac(f['dstMac']) + mac(src_mac) + b'\x08\x06' + body
    if f.get('fragment'):
        packet = ipv4(f['src'], f['dst'], 17, payload, frag_offset=64)
    else:
        proto, body = l4(f, payload)
        packet = ipv4(f['src'], f['dst'], proto, body)
    return mac(f['dstMac']) + mac(src_mac) + b'\x08\x00' + packet


def vxlan(vni, data):
    # RFC 7348: flags with the I bit (the VNI is valid), 24 reserved bits, the VNI, 8 reserved bits.
    return struct.pack('!B3xI', 0x08, vni << 8) + data


def family(host):
    return socket.AF_INET6 if ':' in host else socket.AF_INET


def main(cmd, *args):
    if cmd == 'send':
        iface, src_mac, frames = args
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((iface, 0))
        for f in json.loads(frames):
            s.send(frame(src_mac, f))
    elif cmd == 'vxlan':
        host, port, vni, src_mac, frames = args
        s = socket.socket(family(host), socket.SOCK_DGRAM)
        for f in json.loads(frames):
            s.sendto(vxlan(int(vni), frame(src_mac, f)), (host, int(port)))
    elif cmd == 'udp':
        host, port, tag = args
        socket.socket(family(host), socket.SOCK_DGRAM).sendto(f'BTPROBE:{tag};'.encode(), (host, int(port)))
    elif cmd in ('sniff', 'sniff-out'):
        iface, stop, seconds = args
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
        s.bind((iface, 0))
        listen([s], stop, float(seconds), outgoing=cmd == 'sniff-out')
    elif cmd == 'listen':
        ports, stop, seconds = args
        socks = []
        for port in ports.split(','):
            v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            v4.bind(('0.0.0.0', int(port)))
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            v6.bind(('::', int(port)))
            socks += [v4, v6]
        listen(socks, stop, float(seconds))
    else:
        raise SystemExit(f'unknown command {cmd}')


def listen(socks, stop, seconds, outgoing=False):
    """`outgoing`: a packet socket's frames sent by the interface (on a tap: what its guest
    receives) instead of those it receives (a packet socket sees both)."""
    print('READY', flush=True)
    seen = []
    end = time.monotonic() + seconds
    while stop not in seen and time.monotonic() < end:
        ready, _, _ = select.select(socks, [], [], max(0.0, end - time.monotonic()))
        for sock in ready:
            data, addr = sock.recvfrom(65535)
            if sock.family == socket.AF_PACKET and (addr[2] == socket.PACKET_OUTGOING) != outgoing:
                continue
            seen += [m.decode() for m in PROBE.findall(data)]
    print(json.dumps(seen), flush=True)


if __name__ == '__main__':
    main(*sys.argv[1:])
