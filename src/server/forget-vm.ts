/**
 * Forgetting a VM whose node cannot confirm its deletion (`vm rm --force`, `node remove
 * --force`): what a node's "it is gone" report does (server/nodes.ts, `report`), done without
 * the node. Its row goes with its further NICs (the `vm_nics_go_with_vm` trigger), so its
 * addresses and MACs are free; its node's desired state loses it (a returning agent's `plan`
 * destroys a VM it runs that is not listed); the other hosts of its networks drop its
 * forwarding entries and DNS names.
 */
import { touchNetworkHosts } from './mesh.ts';
import { networksOf } from './store/nics.ts';
import type { VmRow } from './store/rows.ts';
import type { Tx } from './store/store.ts';

export function forgetVm(tx: Tx, vm: VmRow, message: string): void {
  const nets = networksOf(tx.db, vm.id);
  tx.db.prepare(`DELETE FROM vms WHERE id = ?`).run(vm.id);
  for (const net of nets) touchNetworkHosts(tx, net);
  if (vm.node) {
    tx.db.prepare(`UPDATE nodes SET alloc_rev = alloc_rev + 1 WHERE name = ?`).run(vm.node);
    tx.touchNode(vm.node);
  }
  tx.event('deleted', 'vm', vm.name, message);
}
