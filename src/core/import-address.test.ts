import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refusedImportAddress } from './import-address.ts';

test('loopback, link-local (the metadata address) and unspecified addresses are refused, in IPv4 and IPv6', () => {
  for (const ip of ['127.0.0.1', '127.8.9.10', '169.254.169.254', '169.254.0.1', '0.0.0.0', '0.1.2.3', '::1', '::', 'fe80::1', 'FE80::abcd%eth0', 'febf::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:169.254.169.254', '0:0:0:0:0:0:0:1', '[::1]']) {
    assert.ok(refusedImportAddress(ip), `${ip} refused`);
  }
});

test('other addresses are allowed (private ranges too: an image server on the LAN is the point)', () => {
  for (const ip of ['10.0.0.5', '192.168.1.2', '172.16.0.1', '8.8.8.8', '169.253.1.1', '128.0.0.1', '2001:db8::1', 'fec0::1', '::ffff:10.0.0.1', '1.0.0.0']) {
    assert.equal(refusedImportAddress(ip), undefined, ip);
  }
});
