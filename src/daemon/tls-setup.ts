/** The control plane's TLS: its CA and a server certificate naming every address it may be reached at. */
import { hostname, networkInterfaces } from 'node:os';
import { toDnsName } from '../core/dns-name.ts';
import type { TlsNames } from '../server/tls.ts';

/** The names the server certificate carries: this machine's, the listen address, and `--san`s (already checked). */
export function serverTlsNames(listenHost: string, extraNames: string[] = []): TlsNames {
  const ips = Object.values(networkInterfaces())
    .flat()
    .map((i) => i?.address)
    .filter((a): a is string => !!a && !a.startsWith('fe80'));
  // The machine's own name only when it is a DNS name (one with `_` is not): a convenience, not a reason to fail.
  const own = toDnsName(hostname()) ? [hostname()] : [];
  const names = [...own, ...extraNames.filter((n) => !/^[0-9.:]+$/.test(n))];
  const extraIps = extraNames.filter((n) => /^[0-9.:]+$/.test(n));
  const listen = listenHost === '0.0.0.0' || listenHost === '::' ? [] : [listenHost];
  return { hostnames: names, ips: [...new Set([...ips, ...extraIps, ...listen])] };
}

