/**
 * How an agent gets its credential: `--join URL --token bj_… --ca-hash sha256:…` pins the CA,
 * trades the join token for the node's own token, and saves both in `STATE/credential.json`
 * (0600). Later starts use the saved credential; the join token is never needed again.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { CorruptStateError, checkWith, readJsonState } from '../lib/state-file.ts';
import { Client } from '../sdk/node-client.ts';
import { ControlPlaneUnreachable, fetchPinnedCa } from '../sdk/tls.ts';
import type { Logger } from './logger.ts';
import { untilReachable } from './retry.ts';

export interface Credential {
  url: string;
  node: string;
  token: string;
  /** The pinned CA (PEM); absent for a plain-HTTP control plane. */
  ca?: string;
}

export function credentialPath(stateDir: string): string {
  return join(stateDir, 'credential.json');
}

const SavedCredential: z.ZodType<Credential> = z.object({ url: z.string().min(1), node: z.string().min(1), token: z.string().min(1), ca: z.string().optional() });

/**
 * The saved credential, or undefined before the first join. A corrupt one cannot be repaired
 * here (the token is a secret the control plane only hashed): the node must join again.
 */
export function loadCredential(stateDir: string): Credential | undefined {
  try {
    return readJsonState(credentialPath(stateDir), checkWith(SavedCredential));
  } catch (e) {
    if (e instanceof CorruptStateError) {
      throw new Error(`${e.message}: remove it and join again with a new join token (butter node token create), or restore it from a backup`);
    }
    throw e;
  }
}

/**
 * With `log`, an unreachable control plane is waited for (retry.ts); without, it fails at once.
 * A CA that does not match, or a refused join token, fails either way.
 */
export async function joinCluster(o: { url: string; joinToken: string; caHash: string; name: string; stateDir: string; labels?: Record<string, string>; log?: Logger }): Promise<Credential> {
  if (!/^https:\/\//.test(o.url)) throw new Error('join: the control plane URL must be https:// (the CA hash is checked in the TLS handshake)');
  const retry = <T>(fn: () => Promise<T>, retryable?: (e: unknown) => boolean) => (o.log ? untilReachable(o.url, o.log, fn, retryable) : fn());
  // Only no answer at all is worth waiting for: a CA that does not match must stop us.
  const ca = await retry(() => fetchPinnedCa(o.url, o.caHash), (e) => e instanceof ControlPlaneUnreachable);
  const joined = await retry(() => new Client({ url: o.url, token: o.joinToken, ca }).call('join', { body: { name: o.name, ...(o.labels ? { labels: o.labels } : {}) } }));
  const cred: Credential = { url: o.url, node: joined.node.name, token: joined.token, ca };
  // Atomic: a crash mid-write must not leave a torn credential (the join token is spent).
  writeFileAtomic(credentialPath(o.stateDir), JSON.stringify(cred, null, 2) + '\n', 0o600);
  return cred;
}
