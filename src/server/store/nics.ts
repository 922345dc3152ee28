/**
 * Queries on VMs' NICs that more than one service needs (vms.ts and nodes.ts both): here, in
 * the store, rather than one service importing the other's helpers.
 */
import type { NicRow } from './rows.ts';
import type { Tx } from './store.ts';

/** A VM's NICs beyond eth0. */
export function moreNics(db: Tx['db'], vmId: string): NicRow[] {
  return db.prepare(`SELECT * FROM vm_nics WHERE vm_id = ? ORDER BY idx`).all(vmId) as NicRow[];
}

/** The networks of all of a VM's NICs. */
export function networksOf(db: Tx['db'], vmId: string): string[] {
  return (db.prepare(`SELECT network FROM nics WHERE vm_id = ? ORDER BY idx`).all(vmId) as { network: string }[]).map((r) => r.network);
}
