import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderWgConf, WG_KEY } from './wireguard-config.ts';

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
