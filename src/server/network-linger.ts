/**
 * A network stays built on a node for a while after its last VM there is gone
 * (`networks.lingerSeconds` in butter.yaml; none by default in the library, 60 s in the
 * daemons): a VM created there meanwhile, a warm start above all, does not wait for the node
 * to tear down and build again its bridge, gateway namespace, dnsmasq and VXLAN port (about
 * half a second, bench (r)). The node is told it hosts the network (no ports) until the
 * linger ends; then the sweep takes it off its desired state and the agent tears it down. A
 * network deleted meanwhile goes at once (the rows cascade; `lingeringNodes` names whom to
 * tell), and nothing lingers for a node that is lost (its VMs are forgotten, not confirmed).
 * Only networks that exist linger: their VNI and uplink addresses are still theirs, so a
 * lingering network never holds what another network needs.
 */
import type { Db } from './store/db.ts';
import type { Tx } from './store/store.ts';

/** After a node confirmed VMs gone: each of `networks` that no VM of `node` uses any more lingers there until `now + ms`. */
export function lingerAfterDelete(tx: Tx, node: string, networks: readonly string[], ms: number): void {
  if (ms <= 0) return;
  const until = new Date(Date.parse(tx.now) + ms).toISOString();
  const used = tx.db.prepare(
    `SELECT 1 FROM vms v WHERE v.node = @node AND (v.network = @net OR EXISTS (SELECT 1 FROM vm_nics x WHERE x.vm_id = v.id AND x.network = @net)) LIMIT 1`,
  );
  const put = tx.db.prepare(
    `INSERT INTO network_linger (network, node, until) SELECT @net, @node, @until WHERE EXISTS (SELECT 1 FROM networks WHERE name = @net)
     ON CONFLICT (network, node) DO UPDATE SET until = excluded.until`,
  );
  for (const net of new Set(networks)) if (!used.get({ node, net })) put.run({ net, node, until });
}

/** The networks lingering on `node` (its desired state lists them with no ports). */
export function lingeringNetworks(db: Db, node: string): string[] {
  return (db.prepare(`SELECT network FROM network_linger WHERE node = ? ORDER BY network`).all(node) as { network: string }[]).map((r) => r.network);
}

/** The nodes where `network` lingers: told when it is deleted (its rows go with it). */
export function lingeringNodes(db: Db, network: string): string[] {
  return (db.prepare(`SELECT node FROM network_linger WHERE network = ? ORDER BY node`).all(network) as { node: string }[]).map((r) => r.node);
}

/** Whether any linger has ended by `now` (a read: the sweep writes only when one has). */
export function lingerEnded(db: Db, now: string): boolean {
  return db.prepare(`SELECT 1 FROM network_linger WHERE until <= ? LIMIT 1`).get(now) !== undefined;
}

/** Ends the lingers due by `tx.now`: those nodes' desired states lose the networks, and their agents tear them down. */
export function endLingers(tx: Tx): void {
  const due = tx.db.prepare(`SELECT network, node FROM network_linger WHERE until <= ?`).all(tx.now) as { network: string; node: string }[];
  const del = tx.db.prepare(`DELETE FROM network_linger WHERE network = ? AND node = ?`);
  for (const { network, node } of due) {
    del.run(network, node);
    tx.touchNode(node);
  }
}
