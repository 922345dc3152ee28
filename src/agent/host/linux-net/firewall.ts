/** The host's one nftables ruleset (core/nft-rules.ts) and IPv4 forwarding. */
import { NFT_TABLES, renderNftDelete } from '../../../core/nft-rules.ts';
import type { Exec } from '../exec.ts';

export class HostFirewall {
  /** The ruleset text last loaded, so an unchanged ruleset is not reloaded. */
  private last?: string;
  private forwardingOn = false;

  constructor(private readonly exec: Exec) {}

  async apply(ruleset: string): Promise<void> {
    // Reload when the text changed, or when someone else dropped our tables (e.g. a flush).
    if (ruleset === this.last && (await this.tablesPresent())) return;
    await this.exec.run('nft', ['-f', '-'], { input: ruleset });
    this.last = ruleset;
  }

  async remove(): Promise<void> {
    await this.exec.run('nft', ['-f', '-'], { input: renderNftDelete() });
    this.last = undefined;
  }

  /** Only NAT egress and VPN routers need routing; never switched off again, other software may rely on it. */
  async enableForwarding(): Promise<void> {
    if (this.forwardingOn) return;
    const now = (await this.exec.run('sysctl', ['-n', 'net.ipv4.ip_forward'])).stdout.trim();
    if (now !== '1') await this.exec.run('sysctl', ['-w', 'net.ipv4.ip_forward=1']);
    this.forwardingOn = true;
  }

  private async tablesPresent(): Promise<boolean> {
    const out = (await this.exec.run('nft', ['list', 'tables'])).stdout.split('\n').map((l) => l.trim());
    return NFT_TABLES.every((t) => out.includes(`table ${t}`));
  }
}
