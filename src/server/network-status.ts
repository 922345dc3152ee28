/**
 * What each node's agent last said of the networks it hosts (`networks` in its report): built
 * (`ready`), or not (`error`, and why). Shown per node by `network show`; a network's VMs on a
 * node where it is in error carry the reason themselves (the agent reports it with them).
 */
import type { NetworkNodeState } from '../api/schemas/network.ts';
import type { NetworkReport } from '../api/schemas/node.ts';
import type { Db } from './store/db.ts';
import type { Tx } from './store/store.ts';

interface StatusRow {
  network: string;
  state: 'ready' | 'error';
  error: string | null;
}

function stored(db: Db, node: string): Map<string, StatusRow> {
  const rows = db.prepare(`SELECT network, state, error FROM network_status WHERE node = ?`).all(node) as StatusRow[];
  return new Map(rows.map((r) => [r.network, r]));
}

/**
 * The part of a report a node may speak for: the networks it hosts (its VMs' and those it is
 * the VPN gateway of). Anything else, a network removed meanwhile included, is dropped.
 */
export function ownNetworks(db: Db, node: string, reported: readonly NetworkReport[]): NetworkReport[] {
  const hosted = new Set(
    (db.prepare(`SELECT x.network AS name FROM nics x JOIN vms v ON v.id = x.vm_id WHERE v.node = @node UNION SELECT name FROM networks WHERE vpn_node = @node`).all({ node }) as { name: string }[]).map((r) => r.name),
  );
  return reported.filter((r) => hosted.has(r.name));
}

/** Whether the report says what is stored already (the common heartbeat: then no write). */
export function sameNetworkStatus(db: Db, node: string, reported: readonly NetworkReport[]): boolean {
  const have = stored(db, node);
  if (have.size !== reported.length) return false;
  return reported.every((r) => {
    const h = have.get(r.name);
    return h !== undefined && h.state === r.state && h.error === (r.error ?? null);
  });
}

/**
 * Replaces the node's rows with the report (networks removed since are not kept); a network
 * going into error, or out of it, is an event.
 */
export function recordNetworkStatus(tx: Tx, node: string, reported: readonly NetworkReport[]): void {
  const have = stored(tx.db, node);
  const names = new Set(reported.map((r) => r.name));
  for (const name of have.keys()) if (!names.has(name)) tx.db.prepare(`DELETE FROM network_status WHERE network = ? AND node = ?`).run(name, node);
  for (const r of reported) {
    const before = have.get(r.name);
    const error = r.state === 'error' ? (r.error ?? 'failed to apply') : null;
    if (before && before.state === r.state && before.error === error) continue;
    // A network removed meanwhile is not recorded (nothing to show it on).
    const put = tx.db
      .prepare(
        `INSERT INTO network_status (network, node, state, error, updated_at) SELECT @network, @node, @state, @error, @now WHERE EXISTS (SELECT 1 FROM networks WHERE name = @network)
         ON CONFLICT (network, node) DO UPDATE SET state = excluded.state, error = excluded.error, updated_at = excluded.updated_at`,
      )
      .run({ network: r.name, node, state: r.state, error, now: tx.now });
    if (put.changes === 0) continue;
    if (error !== null) tx.event('error', 'network', r.name, `network ${r.name} on node ${node}: ${error}`);
    else if (before?.state === 'error') tx.event('ready', 'network', r.name, `network ${r.name} on node ${node} is built again`);
  }
}

/** The nodes hosting a network (running a VM with a NIC on it, or its VPN gateway), with what each said of it. */
export function networkNodes(db: Db, network: string): NetworkNodeState[] {
  const rows = db
    .prepare(
      `SELECT h.node AS node, s.state AS state, s.error AS error FROM (
         SELECT v.node AS node FROM nics x JOIN vms v ON v.id = x.vm_id WHERE x.network = @network AND v.node IS NOT NULL
         UNION SELECT vpn_node FROM networks WHERE name = @network AND vpn_node IS NOT NULL
       ) h LEFT JOIN network_status s ON s.network = @network AND s.node = h.node ORDER BY h.node`,
    )
    .all({ network }) as { node: string; state: 'ready' | 'error' | null; error: string | null }[];
  return rows.map((r) => ({ node: r.node, state: r.state ?? 'pending', error: r.error }));
}
