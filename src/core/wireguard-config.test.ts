import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderClientConf, renderWgConf, WG_KEY } from './wireguard-config.ts';

const PRIV = '8DE0R2v6yMlcql9Xmu7A7+k0m35kbibSiQd8OSDo9Xk=';
const B = 'S343edvTdLPDUssjfYcnSBZcot1qvWePgii2qp0dEU8=';
const C = 'XBTipIAq4xgA/0Nh3/epgdL7QY3EFby0c43DJtqKaQE=';

test('renders the mesh for wg syncconf (golden), peers sorted by node', () => {
  const text = renderWgConf({
    privateKey: PRIV,
    listenPort: 51820,
    peers: [
      { node: 'node-c', publicKey: C, endpoint: '[fd00::3]:51820', address: '100.127.0.3' },
      { node: 'node-b', publicKey: B, endpoint: '192.0.2.2:51820', address: '100.127.0.2' },
    ],
  });
  assert.equal(
    text,
    `[Interface]
PrivateKey = ${PRIV}
ListenPort = 51820

# node node-b
[Peer]
PublicKey = ${B}
AllowedIPs = 100.127.0.2/32
Endpoint = 192.0.2.2:51820
PersistentKeepalive = 25

# node node-c
[Peer]
PublicKey = ${C}
AllowedIPs = 100.127.0.3/32
Endpoint = [fd00::3]:51820
PersistentKeepalive = 25
`,
  );
});

test('a peer without an endpoint waits for it to connect first', () => {
  const text = renderWgConf({ privateKey: PRIV, listenPort: 1, peers: [{ node: 'n', publicKey: B, endpoint: null, address: '100.127.0.9' }] });
  assert.doesNotMatch(text, /Endpoint/);
});

test('refuses malformed or duplicate keys instead of writing a config wg would reject', () => {
  assert.throws(() => renderWgConf({ privateKey: 'nope', listenPort: 1, peers: [] }), /private key/);
  assert.throws(() => renderWgConf({ privateKey: PRIV, listenPort: 1, peers: [{ node: 'x', publicKey: 'AAA=', endpoint: null, address: '100.127.0.2' }] }), /peer x/);
  const dup = { publicKey: B, endpoint: null };
  assert.throws(() => renderWgConf({ privateKey: PRIV, listenPort: 1, peers: [{ node: 'a', address: '100.127.0.2', ...dup }, { node: 'b', address: '100.127.0.3', ...dup }] }), /used twice/);
  assert.ok(WG_KEY.test(C) && !WG_KEY.test(C.replace('=', 'x')));
});

test('VPN peers follow the nodes: their address only, no endpoint (they roam), no keepalive', () => {
  const text = renderWgConf({
    privateKey: PRIV,
    listenPort: 51820,
    peers: [{ node: 'n2', publicKey: B, endpoint: '192.0.2.2:51820', address: '100.127.0.2' }],
    clients: [{ name: 'laptop', network: 'lan', publicKey: C, address: '10.20.0.3' }],
  });
  assert.equal(
    text.split('\n\n').at(-1),
    `# VPN peer laptop of network lan
[Peer]
PublicKey = ${C}
AllowedIPs = 10.20.0.3/32
`,
  );
  assert.throws(
    () => renderWgConf({ privateKey: PRIV, listenPort: 1, peers: [{ node: 'n2', publicKey: B, endpoint: null, address: '100.127.0.2' }], clients: [{ name: 'l', network: 'lan', publicKey: B, address: '10.0.0.2' }] }),
    /VPN peer l: public key used twice/,
  );
});

test('renders a VPN peer its wg-quick file (golden); a placeholder when the user keeps the key', () => {
  const cfg = { address: '10.20.0.3/16', dns: '10.20.0.1', mtu: 1390, serverPublicKey: B, endpoint: '192.0.2.2:51820', allowedIps: ['10.20.0.0/16'], persistentKeepalive: 25 };
  assert.equal(
    renderClientConf(cfg, PRIV, 'Butter network lan, peer laptop'),
    `# Butter network lan, peer laptop
[Interface]
PrivateKey = ${PRIV}
Address = 10.20.0.3/16
DNS = 10.20.0.1
MTU = 1390

[Peer]
PublicKey = ${B}
Endpoint = 192.0.2.2:51820
AllowedIPs = 10.20.0.0/16
PersistentKeepalive = 25
`,
  );
  assert.match(renderClientConf(cfg, undefined, 't'), /^PrivateKey = <your private key>$/m);
  assert.throws(() => renderClientConf(cfg, 'nope', 't'), /private key/);
});
