/**
 * How an agent gets its credential: `--join URL --token bj_… --ca-hash sha256:…` pins the CA,
 * trades the join token for the node's own token, and saves both in `STATE/credential.json`
 * (0600). Later starts use the saved credential; the join token is never needed again.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '../sdk/client.ts';
import { fetchPinnedCa } from '../sdk/tls.ts';

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

export function loadCredential(stateDir: string): Credential | undefined {
  const f = credentialPath(stateDir);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Credential) : undefined;
}

export async function joinCluster(o: { url: string; joinToken: string; caHash: string; name: string; stateDir: string; labels?: Record<string, string> }): Promise<Credential> {
  if (!/^https:\/\//.test(o.url)) throw new Error('join: the control plane URL must be https:// (the CA hash is checked in the TLS handshake)');
  const ca = await fetchPinnedCa(o.url, o.caHash);
  const joined = await new Client({ url: o.url, token: o.joinToken, ca }).call('join', { body: { name: o.name, ...(o.labels ? { labels: o.labels } : {}) } });
  const cred: Credential = { url: o.url, node: joined.node.name, token: joined.token, ca };
  writeFileSync(credentialPath(o.stateDir), JSON.stringify(cred, null, 2) + '\n', { mode: 0o600 });
  chmodSync(credentialPath(o.stateDir), 0o600); // the mode applies only to a new file
  return cred;
}
