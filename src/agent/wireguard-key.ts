/**
 * The node's WireGuard key pair, made on first start and kept in its state dir (mode 0600).
 * Only the public half is ever sent anywhere; the private half is read by `wg` from a file.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WG_KEY } from '../core/wireguard-config.ts';
import { generateKey, publicKeyOf, type WireguardKey } from '../core/wireguard-keys.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';

export { publicKeyOf, type WireguardKey };

export function loadOrCreateKey(stateDir: string): WireguardKey {
  const dir = join(stateDir, 'wireguard');
  const file = join(dir, 'private.key');
  if (existsSync(file)) {
    const privateKey = readFileSync(file, 'utf8').trim();
    // A new key is a new identity, but the agent reports it and the peers follow (mesh.ts).
    if (!WG_KEY.test(privateKey)) throw new Error(`${file} is corrupt (not a WireGuard private key): remove it and restart the agent, which makes a new key and reports it`);
    return { privateKey, publicKey: publicKeyOf(privateKey) };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const key = generateKey();
  // Written whole or not at all: a half-written key would change the node's identity.
  writeFileAtomic(file, `${key.privateKey}\n`, 0o600);
  return key;
}
