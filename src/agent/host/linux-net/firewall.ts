/**
 * The host's nftables: the one ruleset of core/nft-rules.ts, the paths table
 * (core/paths/nft-paths.ts) and the published ports' (core/paths/nft-publish.ts), each loaded
 * atomically by its own `nft -f -` and only when its text changed (or the table went); and
 * IPv4 forwarding.
 */
import { RULESET_TABLES, renderNftDelete } from '../../../core/nft-rules.ts';
import type { Exec } from '../exec.ts';

export class HostFirewall {
  /** The text last loaded per table group (key: the tables it makes), so an unchanged one is not reloaded. */
  private readonly last = new Map<string, string>();
  private forwardingOn = false;

  constructor(private readonly exec: Exec) {}

  /** The main ruleset (`inet butter`, `bridge butter`). */
  async apply(ruleset: string): Promise<void> {
    await this.load([{ tables: RULESET_TABLES, text: ruleset }]);
  }

  /**
   * Each text replaces its tables whole (the main ruleset, `inet butter_paths`,
   * `inet butter_publish`), in order, each its own transaction; one listing of the tables for
   * all. Returns the tables it loaded.
   */
  async load(groups: readonly { tables: readonly string[]; text: string }[]): Promise<string[]> {
    let present: string[] | undefined;
    const loaded: string[] = [];
    for (const g of groups) {
      const key = g.tables.join(',');
      // Reload when the text changed, or when someone else dropped our tables (e.g. a flush).
      if (g.text === this.last.get(key)) {
        present ??= await this.tables();
        if (g.tables.every((t) => present!.includes(`table ${t}`))) continue;
      }
      await this.exec.run('nft', ['-f', '-'], { input: g.text });
      this.last.set(key, g.text);
      loaded.push(...g.tables);
    }
    return loaded;
  }

  async remove(): Promise<void> {
    await this.exec.run('nft', ['-f', '-'], { input: renderNftDelete() });
    this.last.clear();
  }

  /** Only NAT egress, VPN routers and published ports need routing; never switched off again, other software may rely on it. */
  async enableForwarding(): Promise<void> {
    if (this.forwardingOn) return;
    const now = (await this.exec.run('sysctl', ['-n', 'net.ipv4.ip_forward'])).stdout.trim();
    if (now !== '1') await this.exec.run('sysctl', ['-w', 'net.ipv4.ip_forward=1']);
    this.forwardingOn = true;
  }

  private async tables(): Promise<string[]> {
    return (await this.exec.run('nft', ['list', 'tables'])).stdout.split('\n').map((l) => l.trim());
  }
}
