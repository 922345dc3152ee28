/**
 * The route table: the single source of truth for the HTTP API. The server binds handlers
 * to it, the SDK derives its typed client from it, and OpenAPI is generated from it.
 */
import { z } from 'zod';
import { BlobParams, BlobQuery, Blob, ExportFailure, ExportParams, ExportUploadQuery, Image, ImageCreate, ImageFromVm, ImageImport, ImageWarm, WarmParams } from './schemas/image.ts';
import { Empty, ForceQuery, IdempotentHeaders, NameParams, listOf, Name } from './schemas/common.ts';
import { ConsoleChunk, DesiredQuery, DesiredWatch } from './schemas/desired.ts';
import { PathVerifyReport, ProbeResults, VerifyQuery } from './schemas/verify.ts';
import { Event, EventsQuery, EventStreamHeaders, EventStreamQuery, Health, Whoami } from './schemas/event.ts';
import { Readiness } from './schemas/ready.ts';
import { Group, GroupSet, Node, NodeCreate, NodeCreated, NodeReport, NodeUpdate, Relocated, RelocateBody } from './schemas/node.ts';
import { Network, NetworkCreate } from './schemas/network.ts';
import { PeerParams, VpnPeer, VpnPeerCreate, VpnPeerJoined } from './schemas/vpn.ts';
import { JoinRequest, Joined, JoinToken, JoinTokenCreate, JoinTokenCreated } from './schemas/join.ts';
import { Session, SessionCreate, SessionState } from './schemas/session.ts';
import { Token, TokenCreate, TokenCreated, TokenParams, type UserRole } from './schemas/token.ts';
import { Path, PathCheck, PathCheckQuery, PathCreate, PathListQuery, PathMatch, PathParams } from './schemas/path.ts';
import { Graph, GraphQuery, GRAPH_MEDIA_TYPES } from './schemas/graph.ts';
import { Service, ServiceCreate, ServiceListQuery, ServiceRevision, ServiceRollback, ServiceScale, ServiceUpdate } from './schemas/service.ts';
import { ConsoleInput, ConsoleSocketQuery, Logs, LogsQuery, Vm, VmCreate, VmResize, VmSuspend, VmUserData, VmUserDataSet } from './schemas/vm.ts';
import { Snapshot, SnapshotCreate, SnapshotParams, VmClone } from './schemas/snapshot.ts';

/**
 * Who may call a route: a `UserRole` (schemas/token.ts) is the least role that may; besides
 * those, `public`: anyone, no token; `any`: every valid API token, node tokens too;
 * `node`: the node named in the path (and admins); `blob`: any node, and operators up
 * (image bytes are workload data); `join`: a join token (`bj_…`) instead of an API token;
 * `metrics`: a metrics token (and admins), and no other role: what Prometheus scrapes.
 * One function decides: `authorize` in server/auth.ts.
 */
export type Access = UserRole | 'public' | 'any' | 'node' | 'blob' | 'join' | 'metrics';

/** Who may call a route of each access, in words: for refusals and the OpenAPI document. */
export const WHO_MAY_CALL: Record<Access, string> = {
  public: 'anyone, no token',
  any: 'any valid API token',
  viewer: 'a viewer, operator or admin token',
  operator: 'an operator or admin token',
  admin: 'an admin token',
  node: 'the token of the node named in the path, or an admin token',
  blob: 'a node, operator or admin token',
  join: 'a join token (`bj_…`) as the bearer token',
  metrics: 'a metrics or admin token',
};

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  access: Access;
  summary: string;
  params?: z.ZodType;
  query?: z.ZodType;
  /** Request headers the route reads (an object schema; names as written, matched without case). */
  headers?: z.ZodType;
  body?: z.ZodType;
  /** Raw bodies (blobs) are streams, not JSON. */
  rawBody?: boolean;
  rawResponse?: boolean;
  /** The media type of a raw response (`application/octet-stream` unless said): `text/event-stream` for a stream of server-sent events, Prometheus' text for metrics. */
  rawMediaType?: string;
  response: z.ZodType;
  /** 101: a WebSocket route (`websocket`). */
  status: 101 | 200 | 201 | 202;
  /**
   * A WebSocket route: a GET that upgrades (HTTP/1.1), authorized before the upgrade like any
   * route; `response` is unused. Its frames are described in its summary.
   */
  websocket?: boolean;
  /** Media types the route also answers with, as text, when its query asks for them (the graph's `format`). */
  alsoText?: readonly string[];
  /** A second status that answers with the same `response` (not the error envelope), and when. */
  alsoStatus?: { status: 503; description: string };
}

/** Prometheus' text exposition format, as `/metrics` answers (on the control plane and each agent). */
export const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';

const NodeVmParams = z.object({ name: Name, id: z.string().regex(/^[a-z0-9]{1,32}$/) }).strict();
const Nothing = z.object({}).meta({ id: 'Nothing' });

export const routes = {
  health: { method: 'GET', path: '/healthz', access: 'public', summary: 'Liveness and store revision', response: Health, status: 200 },
  // Public like /healthz: install scripts, systemd and load balancers probe it before they hold
  // (or without ever holding) a token. It tells only check names and states: no node, VM or secret.
  ready: {
    method: 'GET',
    path: '/readyz',
    access: 'public',
    summary: 'Readiness: the store is open and, with `butter up`, the local agent reports and the startup images are added',
    response: Readiness,
    status: 200,
    alsoStatus: { status: 503, description: 'Not ready: the checks that are not `ok` say why' },
  },
  openapi: { method: 'GET', path: '/v1/openapi.json', access: 'viewer', summary: 'This API as OpenAPI 3.1', response: z.record(z.string(), z.unknown()), status: 200 },
  metrics: { method: 'GET', path: '/metrics', access: 'metrics', summary: "The control plane's metrics in Prometheus' text format (version 0.0.4): API requests and latency by route, nodes' capacity and allocation, VMs by state, scheduler decisions, the store's revision, the process", rawResponse: true, rawMediaType: PROMETHEUS_TEXT, response: z.string(), status: 200 },
  whoami: { method: 'GET', path: '/v1/whoami', access: 'any', summary: 'The role of the calling token', response: Whoami, status: 200 },

  listNodes: { method: 'GET', path: '/v1/nodes', access: 'viewer', summary: 'List nodes', response: listOf(Node), status: 200 },
  getNode: { method: 'GET', path: '/v1/nodes/{name}', access: 'viewer', summary: 'Show a node', params: NameParams, response: Node, status: 200 },
  createNode: { method: 'POST', path: '/v1/nodes', access: 'admin', summary: 'Register a node and issue its token (shown once)', body: NodeCreate, response: NodeCreated, status: 201 },
  createJoinToken: { method: 'POST', path: '/v1/join-tokens', access: 'admin', summary: 'Issue a single-use join token for a new node (shown once)', body: JoinTokenCreate, response: JoinTokenCreated, status: 201 },
  listJoinTokens: { method: 'GET', path: '/v1/join-tokens', access: 'admin', summary: 'List join tokens and whether they were used', response: listOf(JoinToken), status: 200 },
  join: { method: 'POST', path: '/v1/join', access: 'join', summary: "Trade a join token (as the bearer token) for a new node's own credential", body: JoinRequest, response: Joined, status: 201 },
  updateNode: { method: 'PATCH', path: '/v1/nodes/{name}', access: 'admin', summary: 'Set labels, group, zone or the resources reserved for the host', params: NameParams, body: NodeUpdate, response: Node, status: 200 },
  deleteNode: { method: 'DELETE', path: '/v1/nodes/{name}', access: 'admin', summary: 'Forget a node and revoke its token (refused while it has VMs). `force=true`, only for a node that is not reachable (`unreachable` or `new`): its VMs are forgotten too, as by a forced VM delete', params: NameParams, query: ForceQuery, response: Nothing, status: 200 },
  cordonNode: { method: 'POST', path: '/v1/nodes/{name}/cordon', access: 'admin', summary: 'Stop placing new VMs on a node', params: NameParams, body: Empty.optional(), response: Node, status: 200 },
  uncordonNode: { method: 'POST', path: '/v1/nodes/{name}/uncordon', access: 'admin', summary: 'Place new VMs on a node again', params: NameParams, body: Empty.optional(), response: Node, status: 200 },
  drainNode: { method: 'POST', path: '/v1/nodes/{name}/drain', access: 'admin', summary: "Cordon a node and recreate its VMs elsewhere from their images (local disk data is lost)", params: NameParams, body: RelocateBody, response: Relocated, status: 200 },
  evacuateNode: { method: 'POST', path: '/v1/nodes/{name}/evacuate', access: 'admin', summary: 'Recreate the VMs of a (lost) node elsewhere from their images (local disk data is lost)', params: NameParams, body: RelocateBody, response: Relocated, status: 200 },
  listGroups: { method: 'GET', path: '/v1/groups', access: 'viewer', summary: 'Host groups with their overcommit ratios and default policy', response: listOf(Group), status: 200 },
  setGroup: { method: 'PUT', path: '/v1/groups/{name}', access: 'admin', summary: "Set a group's overcommit ratios or placement policy", params: NameParams, body: GroupSet, response: Group, status: 200 },
  nodeDesired: { method: 'GET', path: '/v1/nodes/{name}/desired', access: 'node', summary: 'Long-poll the desired state of a node, keyed by revision, and keystrokes typed into its VMs\' consoles; a watch that times out answers `unchanged`', params: NameParams, query: DesiredQuery, response: DesiredWatch, status: 200 },
  nodeReport: { method: 'POST', path: '/v1/nodes/{name}/report', access: 'node', summary: 'Heartbeat with capacity and observed VM states', params: NameParams, body: NodeReport, response: Nothing, status: 200 },
  nodeConsole: { method: 'POST', path: '/v1/nodes/{name}/vms/{id}/console', access: 'node', summary: 'Append captured serial console output of a VM', params: NodeVmParams, body: ConsoleChunk, response: Nothing, status: 200 },
  nodeExportUpload: { method: 'PUT', path: '/v1/nodes/{name}/exports/{id}', access: 'node', summary: "The bytes of an export the node was asked for (its desired state's `exports`): a snapshot of one of its VMs, flattened. Refused unless the export is this node's and pending; the digest must be `sha256`", params: ExportParams, query: ExportUploadQuery, rawBody: true, response: Nothing, status: 200 },
  nodeExportFailed: { method: 'POST', path: '/v1/nodes/{name}/exports/{id}/failed', access: 'node', summary: 'The node could not make an export it was asked for, and why', params: ExportParams, body: ExportFailure, response: Nothing, status: 200 },
  nodeProbeResults: { method: 'POST', path: '/v1/nodes/{name}/probe-results', access: 'node', summary: 'Results of a batch of `path verify` probes the node was handed in its desired-state watch', params: NameParams, body: ProbeResults, response: Nothing, status: 200 },

  uploadBlob: { method: 'POST', path: '/v1/blobs', access: 'operator', summary: 'Upload a blob; refused when `sha256` is given and differs', query: BlobQuery, rawBody: true, response: Blob, status: 201 },
  getBlob: { method: 'GET', path: '/v1/blobs/{sha256}', access: 'blob', summary: 'Download a blob', params: BlobParams, rawResponse: true, response: z.string(), status: 200 },

  listImages: { method: 'GET', path: '/v1/images', access: 'viewer', summary: 'List images', response: listOf(Image), status: 200 },
  createImage: { method: 'POST', path: '/v1/images', access: 'operator', summary: 'Make an image from uploaded blobs', headers: IdempotentHeaders, body: ImageCreate, response: Image, status: 201 },
  importImage: {
    method: 'POST',
    path: '/v1/images/import',
    access: 'operator',
    summary:
      "Add a disk image by URL: the control plane downloads it in the background. Answers 202 with the image `importing` (`import.bytesDone`/`bytesTotal` as it goes; `GET /v1/images/{name}`), then `ready`, or `failed` with `import.error` (a digest other than `sha256`, an HTTP error, a timeout, a redirect, too big, or a disk naming another file), leaving no blob behind. A URL that is not http(s), or whose host resolves to a loopback, link-local (169.254.0.0/16: the metadata address) or unspecified address, is refused at once (400 naming `url`)",
    headers: IdempotentHeaders,
    body: ImageImport,
    response: Image,
    status: 202,
  },
  createImageFromVm: { method: 'POST', path: '/v1/images/from-vm', access: 'operator', summary: "Make a disk image of a VM's root disk at one of its snapshots (default: one taken now, `image-NAME`). Answers 202 with the image `pending`; the VM's node flattens the snapshot and uploads it; then `ready`, or `failed` with `export.error`", body: ImageFromVm, response: Image, status: 202 },
  warmImage: {
    method: 'POST',
    path: '/v1/images/{name}/warm',
    access: 'operator',
    summary:
      "Warm an image on a node: the node boots a hidden template VM of it (no address on any network), waits until its guest says it is ready (`warm-ready` on its console, 60 s at most), saves its RAM and device state and freezes its disk, then ends it. Answers 202 with the image, its `warm` entry for that node `warming`, later `ready` or `failed` with the reason. New VMs of the image on that node with the same CPUs, memory and one NIC then start from it (`start: 'warm'`). Refused: an image already warm or warming on that node (409), a node that cannot take the template (422 naming `node`)",
    params: NameParams,
    body: ImageWarm,
    response: Image,
    status: 202,
  },
  unwarmImage: {
    method: 'DELETE',
    path: '/v1/images/{name}/warm/{node}',
    access: 'operator',
    summary:
      "Forget an image's warm state on one node (ready, warming or failed): new VMs of it there boot cold; the node deletes the saved state once no VM's disk there stands on its frozen layer (the clones made from it run on). Answers the image. Refused: no warm state of the image on that node (404 naming `node`)",
    params: WarmParams,
    response: Image,
    status: 200,
  },
  getImage: { method: 'GET', path: '/v1/images/{name}', access: 'viewer', summary: 'Show an image', params: NameParams, response: Image, status: 200 },
  deleteImage: { method: 'DELETE', path: '/v1/images/{name}', access: 'operator', summary: 'Remove an image (refused while a VM uses it)', params: NameParams, response: Nothing, status: 200 },

  listNetworks: { method: 'GET', path: '/v1/networks', access: 'viewer', summary: 'List private networks', response: listOf(Network), status: 200 },
  createNetwork: { method: 'POST', path: '/v1/networks', access: 'operator', summary: 'Create a private network (its CIDR must not overlap another network\'s)', headers: IdempotentHeaders, body: NetworkCreate, response: Network, status: 201 },
  getNetwork: { method: 'GET', path: '/v1/networks/{name}', access: 'viewer', summary: 'Show a private network', params: NameParams, response: Network, status: 200 },
  verifyNetwork: { method: 'POST', path: '/v1/networks/{name}/verify', access: 'admin', summary: 'Probe every ordered pair of the network\'s services with real packets through the real rules on the nodes (never delivered), and report every probe where the data plane disagrees with the paths', params: NameParams, query: VerifyQuery, response: PathVerifyReport, status: 200 },
  deleteNetwork: { method: 'DELETE', path: '/v1/networks/{name}', access: 'operator', summary: 'Remove a private network (refused while VMs or VPN peers are attached)', params: NameParams, response: Nothing, status: 200 },
  listNetworkPeers: { method: 'GET', path: '/v1/networks/{name}/peers', access: 'viewer', summary: "List a network's VPN peers", params: NameParams, response: listOf(VpnPeer), status: 200 },
  joinNetwork: { method: 'POST', path: '/v1/networks/{name}/peers', access: 'operator', summary: 'Register a VPN peer (its public key) and get what its wg-quick configuration needs', params: NameParams, headers: IdempotentHeaders, body: VpnPeerCreate, response: VpnPeerJoined, status: 201 },
  revokeNetworkPeer: { method: 'DELETE', path: '/v1/networks/{name}/peers/{peer}', access: 'operator', summary: 'Revoke a VPN peer: its tunnel stops at once', params: PeerParams, response: Nothing, status: 200 },

  listVms: { method: 'GET', path: '/v1/vms', access: 'viewer', summary: 'List VMs', response: listOf(Vm), status: 200 },
  createVm: { method: 'POST', path: '/v1/vms', access: 'operator', summary: 'Create a VM', headers: IdempotentHeaders, body: VmCreate, response: Vm, status: 201 },
  getVm: { method: 'GET', path: '/v1/vms/{name}', access: 'viewer', summary: 'Show a VM', params: NameParams, response: Vm, status: 200 },
  deleteVm: { method: 'DELETE', path: '/v1/vms/{name}', access: 'operator', summary: 'Delete a VM; it is gone once its node confirms. `force=true`, only while its node is not reachable: forgotten at once (its node destroys its copy if it returns)', params: NameParams, query: ForceQuery, response: Vm, status: 202 },
  startVm: { method: 'POST', path: '/v1/vms/{name}/start', access: 'operator', summary: 'Start a VM', params: NameParams, body: Empty.optional(), response: Vm, status: 202 },
  stopVm: { method: 'POST', path: '/v1/vms/{name}/stop', access: 'operator', summary: 'Stop a VM (ACPI shutdown, then kill after a timeout)', params: NameParams, body: Empty.optional(), response: Vm, status: 202 },
  restartVm: { method: 'POST', path: '/v1/vms/{name}/restart', access: 'operator', summary: 'Restart a VM', params: NameParams, body: Empty.optional(), response: Vm, status: 202 },
  suspendVm: { method: 'POST', path: '/v1/vms/{name}/suspend', access: 'operator', summary: "Save a running VM's RAM and device state on its node and end its QEMU (`release`: give back its CPUs and memory meanwhile)", params: NameParams, body: VmSuspend.optional(), response: Vm, status: 202 },
  resumeVm: { method: 'POST', path: '/v1/vms/{name}/resume', access: 'operator', summary: 'Bring a suspended VM back where it was (same disk, MAC and address), from its saved memory state', params: NameParams, body: Empty.optional(), response: Vm, status: 202 },
  resizeVm: { method: 'POST', path: '/v1/vms/{name}/resize', access: 'operator', summary: 'Change CPUs/memory; applied at the next start', params: NameParams, body: VmResize, response: Vm, status: 200 },
  getUserData: { method: 'GET', path: '/v1/vms/{name}/user-data', access: 'operator', summary: "A VM's user-data", params: NameParams, response: VmUserData, status: 200 },
  setUserData: { method: 'PUT', path: '/v1/vms/{name}/user-data', access: 'operator', summary: "Replace a VM's user-data (seen by the guest at its next metadata fetch)", params: NameParams, body: VmUserDataSet, response: VmUserData, status: 200 },
  vmConsoleInput: { method: 'POST', path: '/v1/vms/{name}/console', access: 'operator', summary: "Type into a VM's serial console (output arrives through logs)", params: NameParams, body: ConsoleInput, response: Nothing, status: 202 },
  vmConsoleSocket: {
    method: 'GET',
    path: '/v1/vms/{name}/console/ws',
    access: 'operator',
    summary:
      "The VM's serial console as a WebSocket (HTTP/1.1 upgrade; answers 101). Server to client: binary frames of console output (the bytes `vm logs` returns), from `offset` (default: the current end); a text frame is an error envelope about input (the socket stays open). Client to server: text or binary frames of keystrokes, as `POST /v1/vms/{name}/console` takes them (the VM must be running). The server closes with 1000 when the VM is deleted, 1008 when the token is revoked or the session ends. With the session cookie, the Origin header must be the control plane's own origin (else 403 before the upgrade)",
    params: NameParams,
    query: ConsoleSocketQuery,
    websocket: true,
    response: Nothing,
    status: 101,
  },
  createSnapshot: { method: 'POST', path: '/v1/vms/{name}/snapshots', access: 'operator', summary: "Take a crash-consistent snapshot of a VM's root disk (a running VM is paused for it; the pause is reported), with `memory` also its RAM and device state (a running VM only); pending until its node has taken it", params: NameParams, body: SnapshotCreate.optional(), response: Snapshot, status: 202 },
  listSnapshots: { method: 'GET', path: '/v1/vms/{name}/snapshots', access: 'viewer', summary: "A VM's snapshots, oldest first (`initial` is made at its first boot); those on a node that is not reachable are `lost`", params: NameParams, response: listOf(Snapshot), status: 200 },
  restoreSnapshot: { method: 'POST', path: '/v1/vms/{name}/snapshots/{snap}/restore', access: 'operator', summary: 'Restart a VM from one of its ready snapshots: what its root disk got since is discarded', params: SnapshotParams, body: Empty.optional(), response: Vm, status: 202 },
  deleteSnapshot: { method: 'DELETE', path: '/v1/vms/{name}/snapshots/{snap}', access: 'operator', summary: "Delete a snapshot (refused for `initial`, and while the VM's disk, another snapshot or a clone stands on it)", params: SnapshotParams, response: Nothing, status: 200 },
  reinitVm: { method: 'POST', path: '/v1/vms/{name}/reinit', access: 'operator', summary: 'Restart a VM from its `initial` snapshot: its root disk as at its first boot', params: NameParams, body: Empty.optional(), response: Vm, status: 202 },
  cloneVm: { method: 'POST', path: '/v1/vms/{name}/clone', access: 'operator', summary: "A new VM (its own name, MAC, address, instance-id) whose root disk starts from a snapshot of this one (default: one taken now), on the snapshot's node", params: NameParams, body: VmClone, response: Vm, status: 201 },
  vmLogs: { method: 'GET', path: '/v1/vms/{name}/logs', access: 'operator', summary: 'Serial console output from `offset`; `wait` long-polls for more', params: NameParams, query: LogsQuery, response: Logs, status: 200 },

  listServices: { method: 'GET', path: '/v1/services', access: 'viewer', summary: 'List services (of one network with `network`)', query: ServiceListQuery, response: listOf(Service), status: 200 },
  createService: { method: 'POST', path: '/v1/services', access: 'operator', summary: 'Create a service from a blueprint and its templates: its address block and all its instances, in one transaction', headers: IdempotentHeaders, body: ServiceCreate, response: Service, status: 201 },
  getService: { method: 'GET', path: '/v1/services/{name}', access: 'viewer', summary: 'Show a service: instances (node, zone, address, state, revision), blueprint, warnings, rollout', params: NameParams, response: Service, status: 200 },
  deleteService: { method: 'DELETE', path: '/v1/services/{name}', access: 'operator', summary: 'Delete a service: its instances are deleted, and it goes with the last of them (`deleting` until then)', params: NameParams, response: Service, status: 202 },
  scaleService: { method: 'POST', path: '/v1/services/{name}/scale', access: 'operator', summary: 'Set the number of instances: new ones spread over zones and nodes; the newest go first', params: NameParams, body: ServiceScale, response: Service, status: 202 },
  updateService: { method: 'POST', path: '/v1/services/{name}/update', access: 'operator', summary: 'Roll the instances to a new revision, one at a time (identical to the current revision: nothing changes)', params: NameParams, body: ServiceUpdate, response: Service, status: 202 },
  rollbackService: { method: 'POST', path: '/v1/services/{name}/rollback', access: 'operator', summary: 'Roll the instances back to an earlier revision, one at a time', params: NameParams, body: ServiceRollback, response: Service, status: 202 },
  listServiceRevisions: { method: 'GET', path: '/v1/services/{name}/revisions', access: 'operator', summary: "A service's revisions, newest first (with their variables: operators only)", params: NameParams, response: listOf(ServiceRevision), status: 200 },

  listPaths: { method: 'GET', path: '/v1/paths', access: 'viewer', summary: 'List paths (of one network with `network`, from or to one service with `service`)', query: PathListQuery, response: listOf(Path), status: 200 },
  createPath: {
    method: 'POST',
    path: '/v1/paths',
    access: 'operator',
    summary: "Let FROM (a service of the same network, or a CIDR) reach TO's instances on PORTS; a path from a CIDR beyond the network publishes TO on every node (`hostPort`, by default the port itself; only when its blueprint says `public_ip: true`)",
    headers: IdempotentHeaders,
    body: PathCreate,
    response: Path,
    status: 201,
  },
  removePathMatching: { method: 'DELETE', path: '/v1/paths', access: 'operator', summary: 'Remove the path that says exactly FROM TO PORTS (as `path rm FROM TO PORT` names it)', query: PathMatch, response: Path, status: 200 },
  checkPath: { method: 'GET', path: '/v1/paths/check', access: 'viewer', summary: 'May FROM (or the internet, `internet=1`) reach TO on PORT? Allowed names the path that allows it; denied says why (no path, or which admit only part of FROM)', query: PathCheckQuery, response: PathCheck, status: 200 },
  deletePath: { method: 'DELETE', path: '/v1/paths/{id}', access: 'operator', summary: 'Remove a path by its id: nodes stop admitting it within a second', params: PathParams, response: Path, status: 200 },
  getGraph: {
    method: 'GET',
    path: '/v1/graph',
    access: 'viewer',
    summary: 'Who may reach whom: a cluster per network, services (with instances running/total), the internet and CIDRs, an edge per path (`tcp:80`). `format=dot` answers DOT text, `format=svg` the picture (by Graphviz `dot` on the control plane: without it 406 `not_acceptable`; 429 while it draws two already)',
    query: GraphQuery,
    response: Graph,
    alsoText: Object.values(GRAPH_MEDIA_TYPES),
    status: 200,
  },

  createSession: {
    method: 'POST',
    path: '/v1/sessions',
    access: 'public',
    summary:
      "Sign in to the web panel: trade an API token (in the body; a node token is refused) for a session cookie `butter_session` (HttpOnly, Secure, SameSite=Strict, Path=/) that authenticates as the token for 12 h, until sign-out, or until the token is revoked. With the cookie (and no Authorization header), a request that is not GET or HEAD must carry the answer's `csrf` in header `x-csrf-token` (else 403 `csrf_failed`). A wrong token is 401; 10 of them from one address within a minute, 429 for a while",
    body: SessionCreate,
    response: Session,
    status: 201,
  },
  getSession: { method: 'GET', path: '/v1/session', access: 'public', summary: "Whether the request's session cookie names a live session: `{session: {role, csrf, expiresAt}}`, else `{session: null}` (no cookie, signed out, expired, or its token revoked; an Authorization header is not looked at). Never 401: the panel asks at load, signed in or not", response: SessionState, status: 200 },
  deleteSession: { method: 'DELETE', path: '/v1/session', access: 'any', summary: 'Sign out: the session ends on the server and the cookie is cleared', response: Nothing, status: 200 },

  listTokens: { method: 'GET', path: '/v1/tokens', access: 'admin', summary: 'List API tokens (never their secrets)', response: listOf(Token), status: 200 },
  createToken: { method: 'POST', path: '/v1/tokens', access: 'admin', summary: 'Issue an admin, operator, viewer or metrics token; the secret is shown once', body: TokenCreate, response: TokenCreated, status: 201 },
  deleteToken: { method: 'DELETE', path: '/v1/tokens/{id}', access: 'admin', summary: 'Revoke a token', params: TokenParams, response: Nothing, status: 200 },

  listEvents: { method: 'GET', path: '/v1/events', access: 'viewer', summary: 'Audit events after `since` (an event id) or `sinceRevision`, of one `resource` and `name`; `last` for the newest', query: EventsQuery, response: listOf(Event), status: 200 },
  streamEvents: {
    method: 'GET',
    path: '/v1/events/stream',
    access: 'viewer',
    summary:
      'Server-sent events of every change: first the stored audit events after `since` (or `Last-Event-ID`), then the live ones. Each is a message `event: audit` with an `Event` as its JSON `data`; `id` (the store revision) is set on the last message of each revision. `event: gap` (data `{from, oldest}`: an `EventGap`) first when events after the asked revision were pruned: reload the full state. A comment `: keepalive` every 15 s',
    query: EventStreamQuery,
    headers: EventStreamHeaders,
    rawResponse: true,
    rawMediaType: 'text/event-stream',
    response: z.string(),
    status: 200,
  },
} as const satisfies Record<string, Route>;

export type Routes = typeof routes;
export type RouteId = keyof Routes;

type Field<R, K extends string> = R extends Record<K, infer S> ? (S extends z.ZodType ? z.input<S> : never) : undefined;
export type ParamsOf<I extends RouteId> = Field<Routes[I], 'params'>;
export type QueryOf<I extends RouteId> = Field<Routes[I], 'query'>;
export type HeadersOf<I extends RouteId> = Field<Routes[I], 'headers'>;
export type BodyOf<I extends RouteId> = Field<Routes[I], 'body'>;
export type ResponseOf<I extends RouteId> = z.output<Routes[I]['response']>;

export const API_VERSION = '0.1.0';
