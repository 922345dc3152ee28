/** The control plane's TLS: its CA and a server certificate naming every address it may be reached at. */
import { hostname, networkInterfaces } from 'node:os';
import { ensureServerTls, type ServerTls } from '../server/tls.ts';

export function serverTls(dataDir: string, listenHost: string, extraNames: string[] = []): Promise<ServerTls> {
  const ips = Object.values(networkInterfaces())
    .flat()
    .map((i) => i?.address)
    .filter((a): a is string => !!a && !a.startsWith('fe80'));
  const names = [hostname(), ...extraNames.filter((n) => !/^[0-9.:]+$/.test(n))];
  const extraIps = extraNames.filter((n) => /^[0-9.:]+$/.test(n));
  const listen = listenHost === '0.0.0.0' || listenHost === '::' ? [] : [listenHost];
  return ensureServerTls(dataDir, { hostnames: names, ips: [...new Set([...ips, ...extraIps, ...listen])] });
}
