import { test } from 'node:test';
import assert from 'node:assert/strict';
import { guestMtu, wireguardMtu } from './mtu.ts';

test('a full-size guest packet plus VXLAN and WireGuard headers fits the underlay exactly', () => {
  for (const underlay of [1500, 1450, 9000]) {
    const guest = guestMtu(underlay);
    // guest IP packet + inner Ethernet, VXLAN, UDP, IP + WireGuard data header and tag + outer UDP, IP
    const onWire = guest + 14 + 8 + 8 + 20 + (16 + 16) + 8 + 20;
    assert.equal(onWire, underlay);
    assert.equal(wireguardMtu(underlay), guest + 50);
  }
  assert.equal(guestMtu(), 1390);
});
