/**
 * The node's WireGuard key pair, made on first start and kept in its state dir (mode 0600).
 * Only the public half is ever sent anywhere; the private half is read by `wg` from a file.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WG_KEY } from '../core/wireguard-config.ts';

export interface WireguardKey {
  privateKey: string;
  publicKey: string;
}

/** WireGuard keys are raw X25519 keys, base64: exactly what Node's JWK export holds (base64url). */
export function publicKeyOf(privateKey: string): string {
  const d = Buffer.from(privateKey, 'base64').toString('base64url');
  const pub = createPublicKey(createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d, x: '' }, format: 'jwk' }));
  return Buffer.from(pub.export({ format: 'jwk' }).x!, 'base64url').toString('base64');
}

export function loadOrCreateKey(stateDir: string): WireguardKey {
  const dir = join(stateDir, 'wireguard');
  const file = join(dir, 'private.key');
  if (existsSync(file)) {
    const privateKey = readFileSync(file, 'utf8').trim();
    if (!WG_KEY.test(privateKey)) throw new Error(`${file} does not hold a WireGuard private key`);
    return { privateKey, publicKey: publicKeyOf(privateKey) };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const jwk = generateKeyPairSync('x25519').privateKey.export({ format: 'jwk' });
  const privateKey = Buffer.from(jwk.d!, 'base64url').toString('base64');
  // Written whole or not at all: a half-written key would change the node's identity.
  writeFileSync(`${file}.tmp`, `${privateKey}\n`, { mode: 0o600 });
  chmodSync(`${file}.tmp`, 0o600);
  renameSync(`${file}.tmp`, file);
  return { privateKey, publicKey: Buffer.from(jwk.x!, 'base64url').toString('base64') };
}
