/**
 * The MTU of this node's underlay: the interface its packets to the control plane leave by
 * (other nodes are reached the same way), or the default route's when that is loopback (an
 * agent beside the control plane). Undefined when neither says: the control plane then
 * assumes 1500. `ip route get` only consults the routing table; nothing is sent.
 */
import { isIPv4 } from 'node:net';
import type { Exec } from './exec.ts';

export async function underlayMtu(exec: Exec, controlPlaneIp: string | undefined): Promise<number | undefined> {
  const devOf = async (args: string[]): Promise<string | undefined> => {
    const r = await exec.run('ip', ['-j', ...args], { allowFail: true });
    if (r.code !== 0 || !r.stdout.trim()) return undefined;
    return (JSON.parse(r.stdout) as { dev?: string }[])[0]?.dev;
  };
  let dev = controlPlaneIp ? await devOf(['route', 'get', controlPlaneIp]) : undefined;
  if (!dev || dev === 'lo') dev = await devOf(['route', 'show', 'default']);
  if (!dev) return undefined;
  const link = await exec.run('ip', ['-j', 'link', 'show', 'dev', dev], { allowFail: true });
  if (link.code !== 0) return undefined;
  const mtu = (JSON.parse(link.stdout) as { mtu?: number }[])[0]?.mtu;
  return mtu && mtu >= 1280 && mtu <= 65535 ? mtu : undefined;
}

/** Any public address will do: only the routing table is asked which way it goes. */
const ANY_PUBLIC_V4 = '1.1.1.1';

/**
 * This host's address on its default route: the source the kernel would pick for a packet to
 * the internet (`prefsrc` of `ip route get`, a routing-table lookup: nothing is sent). What a
 * laptop on the same LAN most likely reaches when nothing better is known (an agent beside
 * the control plane reports from loopback). Undefined with no default route, or one that
 * names no source or a loopback one. IPv4 only: a v6-only host passes --endpoint.
 */
export async function defaultRouteAddress(exec: Exec): Promise<string | undefined> {
  const r = await exec.run('ip', ['-j', 'route', 'get', ANY_PUBLIC_V4], { allowFail: true });
  if (r.code !== 0) return undefined;
  let src: unknown;
  try {
    src = (JSON.parse(r.stdout) as { prefsrc?: unknown }[])[0]?.prefsrc;
  } catch {
    return undefined;
  }
  return typeof src === 'string' && isIPv4(src) && !src.startsWith('127.') && !src.startsWith('169.254.') && src !== '0.0.0.0' ? src : undefined;
}
