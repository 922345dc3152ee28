/**
 * The MTU of this node's underlay: the interface its packets to the control plane leave by
 * (other nodes are reached the same way), or the default route's when that is loopback (an
 * agent beside the control plane). Undefined when neither says: the control plane then
 * assumes 1500. `ip route get` only consults the routing table; nothing is sent.
 */
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
