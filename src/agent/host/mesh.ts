/** The node's end of the WireGuard mesh, declaratively: `apply` makes the host match. */
import type { DesiredMesh } from '../../api/schemas/desired.ts';

export interface MeshHost {
  /** Brings up (or updates) the mesh interface with these peers; safe to call again. */
  apply(mesh: DesiredMesh): Promise<void>;
  /** Removes the interface (and, for wireguard-go, its process). */
  teardown(): Promise<void>;
}
