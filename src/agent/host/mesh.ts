/** The node's end of the WireGuard mesh, declaratively: `apply` makes the host match. */
import type { DesiredMesh } from '../../api/schemas/desired.ts';
import type { MeshClient } from '../../core/wireguard-config.ts';

export interface MeshHost {
  /**
   * Brings up (or updates) the mesh interface with these peers, and the VPN peers of the
   * networks this node is the VPN gateway of (routed by each network's VPN table, not here);
   * safe to call again.
   */
  apply(mesh: DesiredMesh, clients?: readonly MeshClient[]): Promise<void>;
  /**
   * The public keys of the peers on the interface now; none when there is no interface (a
   * first start, or after a reboot, which also took the host's rules).
   */
  peerKeys(): Promise<ReadonlySet<string>>;
  /** Removes the interface (and, for wireguard-go, its process). */
  teardown(): Promise<void>;
}
