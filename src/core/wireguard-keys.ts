/**
 * WireGuard key pairs: raw X25519 keys, base64, which is exactly what Node's JWK export holds
 * (base64url). Made where they are used: a node's by its agent, a VPN peer's by the CLI on the
 * user's machine. Only public halves ever travel.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';

export interface WireguardKey {
  privateKey: string;
  publicKey: string;
}

export function generateKey(): WireguardKey {
  const jwk = generateKeyPairSync('x25519').privateKey.export({ format: 'jwk' });
  return { privateKey: Buffer.from(jwk.d!, 'base64url').toString('base64'), publicKey: Buffer.from(jwk.x!, 'base64url').toString('base64') };
}

export function publicKeyOf(privateKey: string): string {
  const d = Buffer.from(privateKey, 'base64').toString('base64url');
  const pub = createPublicKey(createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d, x: '' }, format: 'jwk' }));
  return Buffer.from(pub.export({ format: 'jwk' }).x!, 'base64url').toString('base64');
}
