/**
 * Versioned schema migrations, applied in order inside one transaction each; SQLite's
 * `user_version` records how far a database has come. Append only: never edit a released one.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
  INSERT INTO meta (key, value) VALUES ('revision', 0);

  CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'viewer', 'node')),
    node TEXT,
    created_at TEXT NOT NULL
  );

  CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    accel TEXT,
    accel_reason TEXT,
    driver TEXT,
    cpus INTEGER,
    memory_bytes INTEGER,
    disk_bytes INTEGER,
    last_heartbeat_at TEXT,
    desired_rev INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
  );

  CREATE TABLE blobs (sha256 TEXT PRIMARY KEY, size_bytes INTEGER NOT NULL, created_at TEXT NOT NULL);

  CREATE TABLE images (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('disk', 'kernel')),
    sha256 TEXT NOT NULL,
    format TEXT,
    disk TEXT REFERENCES blobs(sha256),
    kernel TEXT REFERENCES blobs(sha256),
    initrd TEXT REFERENCES blobs(sha256),
    root_disk TEXT REFERENCES blobs(sha256),
    root_format TEXT,
    cmdline TEXT,
    created_at TEXT NOT NULL
  );

  CREATE TABLE networks (
    name TEXT PRIMARY KEY,
    cidr TEXT NOT NULL,
    gateway TEXT NOT NULL,
    mtu INTEGER NOT NULL,
    nat INTEGER NOT NULL,
    created_at TEXT NOT NULL
  );

  CREATE TABLE vms (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image TEXT NOT NULL REFERENCES images(name),
    node TEXT REFERENCES nodes(name),
    cpus INTEGER NOT NULL,
    memory_bytes INTEGER NOT NULL,
    disk_bytes INTEGER NOT NULL,
    power TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    network TEXT NOT NULL REFERENCES networks(name),
    ip TEXT,
    mac TEXT NOT NULL,
    user_data TEXT NOT NULL,
    ssh_keys TEXT NOT NULL,
    pending_cpus INTEGER,
    pending_memory_bytes INTEGER,
    restart_gen INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (network, ip)
  );
  CREATE INDEX vms_node ON vms(node);

  CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    name TEXT NOT NULL,
    message TEXT NOT NULL,
    revision INTEGER NOT NULL
  );
  `,
  `
  ALTER TABLE tokens ADD COLUMN description TEXT;
  `,
  `
  -- Clusters: where a node sits, what it keeps for itself, whether it takes new VMs.
  ALTER TABLE nodes ADD COLUMN node_group TEXT NOT NULL DEFAULT 'default';
  ALTER TABLE nodes ADD COLUMN zone TEXT NOT NULL DEFAULT 'default';
  ALTER TABLE nodes ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
  ALTER TABLE nodes ADD COLUMN cordoned INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE nodes ADD COLUMN reserved_cpus INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE nodes ADD COLUMN reserved_memory_bytes INTEGER NOT NULL DEFAULT 536870912;
  ALTER TABLE nodes ADD COLUMN reserved_disk_bytes INTEGER NOT NULL DEFAULT 0;
  -- Bumped whenever the resources placed on the node change: a plan made before is stale.
  ALTER TABLE nodes ADD COLUMN alloc_rev INTEGER NOT NULL DEFAULT 0;

  CREATE TABLE node_groups (
    name TEXT PRIMARY KEY,
    cpu_ratio REAL NOT NULL,
    memory_ratio REAL NOT NULL,
    disk_ratio REAL NOT NULL,
    policy TEXT NOT NULL CHECK (policy IN ('spread', 'binpack')),
    created_at TEXT NOT NULL
  );

  ALTER TABLE vms ADD COLUMN spread_key TEXT;
  ALTER TABLE vms ADD COLUMN placement_warning TEXT;
  `,
  `
  CREATE TABLE join_tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    node_group TEXT NOT NULL,
    zone TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    used_by TEXT,
    created_at TEXT NOT NULL
  );
  `,
  `
  CREATE UNIQUE INDEX vms_mac ON vms(mac);
  `,
  `
  -- Private networks span machines over VXLAN in WireGuard: the guests' MTU leaves room for
  -- both headers (see core/mtu.ts). The default network was made for one machine at 1500.
  UPDATE networks SET mtu = 1390 WHERE mtu = 1500;
  `,
  `
  -- The node mesh: each node's WireGuard public key (its private key stays on it), the
  -- endpoint the others send to, and its mesh address.
  ALTER TABLE nodes ADD COLUMN wg_public_key TEXT;
  ALTER TABLE nodes ADD COLUMN wg_endpoint TEXT;
  ALTER TABLE nodes ADD COLUMN mesh_ip TEXT;
  CREATE UNIQUE INDEX nodes_mesh_ip ON nodes(mesh_ip);
  CREATE UNIQUE INDEX nodes_wg_public_key ON nodes(wg_public_key);
  `,
  `
  -- One VXLAN network identifier per private network, the same on every node.
  ALTER TABLE networks ADD COLUMN vni INTEGER;
  UPDATE networks SET vni = 99 + rowid;
  CREATE UNIQUE INDEX networks_vni ON networks(vni);
  `,
  `
  -- The underlay MTU each node reports; a network's MTU is now computed from the smallest of
  -- them (core/mtu.ts), so the stored one goes.
  ALTER TABLE nodes ADD COLUMN underlay_mtu INTEGER;
  ALTER TABLE networks DROP COLUMN mtu;
  `,
  `
  -- VPN access: each network's gateway node (where its peers' tunnels end), the address of
  -- its router port on the network, and the peers. Only their public keys: a peer's private
  -- key is made on the peer and never sent.
  ALTER TABLE networks ADD COLUMN vpn_node TEXT;
  ALTER TABLE networks ADD COLUMN vpn_ip TEXT;
  CREATE TABLE vpn_peers (
    network TEXT NOT NULL REFERENCES networks(name),
    name TEXT NOT NULL,
    public_key TEXT NOT NULL UNIQUE,
    ip TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (network, name),
    UNIQUE (network, ip)
  );
  `,
  `
  -- More NICs per VM: eth0 stays in vms (network, ip, mac: most VMs have one NIC and pay
  -- nothing more), eth1 and up live here; the view nics is every NIC, eth0 first.
  CREATE TABLE vm_nics (
    vm_id TEXT NOT NULL,
    idx INTEGER NOT NULL CHECK (idx BETWEEN 1 AND 7),
    network TEXT NOT NULL REFERENCES networks(name),
    ip TEXT,
    mac TEXT NOT NULL UNIQUE,
    PRIMARY KEY (vm_id, idx),
    UNIQUE (network, ip)
  );
  CREATE INDEX vm_nics_network ON vm_nics(network);
  CREATE TRIGGER vm_nics_go_with_vm AFTER DELETE ON vms BEGIN DELETE FROM vm_nics WHERE vm_id = OLD.id; END;
  CREATE VIEW nics AS
    SELECT id AS vm_id, 0 AS idx, network, ip, mac FROM vms
    UNION ALL SELECT vm_id, idx, network, ip, mac FROM vm_nics;
  `,
  `
  -- The operator role: runs workloads, does not manage nodes or identities. SQLite cannot
  -- change a CHECK constraint in place, so the tokens table is copied into a new one.
  CREATE TABLE tokens_new (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer', 'node')),
    node TEXT,
    created_at TEXT NOT NULL,
    description TEXT
  );
  INSERT INTO tokens_new (id, hash, role, node, created_at, description) SELECT id, hash, role, node, created_at, description FROM tokens;
  DROP TABLE tokens;
  ALTER TABLE tokens_new RENAME TO tokens;
  `,
  `
  -- EC2-style metadata: whether tokenless (IMDSv1) GETs are answered (vm create
  -- --metadata-tokens). New VMs default to optional, as on EC2; VMs made before were served
  -- IMDSv2 only, and keep it.
  ALTER TABLE vms ADD COLUMN metadata_tokens TEXT NOT NULL DEFAULT 'optional' CHECK (metadata_tokens IN ('optional', 'required'));
  UPDATE vms SET metadata_tokens = 'required';
  `,
  `
  -- A node's address on its default route (its agent's report) at its WireGuard port: the VPN endpoint its peers
  -- get when it has no mesh endpoint (an agent beside the control plane reports from loopback).
  ALTER TABLE nodes ADD COLUMN default_endpoint TEXT;
  `,
  `
  -- Idempotency-Key (server/idempotency.ts): a create's answer, kept 24 h per caller's token
  -- and key, so a client that lost the answer and retries gets it again instead of a 409.
  CREATE TABLE idempotency_keys (
    token_id TEXT NOT NULL,
    key TEXT NOT NULL,
    route TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (token_id, key)
  );
  CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);
  `,
  `
  -- What the agent does when a VM ends by itself (vm create --restart). VMs made before get the
  -- default, on-failure, too: a crash left them stopped as if their guest had powered off,
  -- which was the bug, not a choice anyone made.
  ALTER TABLE vms ADD COLUMN restart TEXT NOT NULL DEFAULT 'on-failure' CHECK (restart IN ('always', 'on-failure', 'never'));
  `,
  `
  -- What each node's agent last said of each network it hosts: built (ready) or not (error,
  -- and why). Gone with the network or the node.
  CREATE TABLE network_status (
    network TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
    node TEXT NOT NULL REFERENCES nodes(name) ON DELETE CASCADE,
    state TEXT NOT NULL CHECK (state IN ('ready', 'error')),
    error TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (network, node)
  );
  CREATE INDEX network_status_node ON network_status(node);
  `,
  `
  -- Data disks (vm create --data-disk): their sizes in bytes, in index order from 1 (the
  -- guest's vdb), as a JSON array; fixed at create. data_disk_bytes is their sum, so a node's
  -- disk in use stays one SUM (disk_bytes + data_disk_bytes) over its VMs.
  ALTER TABLE vms ADD COLUMN data_disks TEXT NOT NULL DEFAULT '[]';
  ALTER TABLE vms ADD COLUMN data_disk_bytes INTEGER NOT NULL DEFAULT 0 CHECK (data_disk_bytes >= 0);
  `,
  `
  -- Services (server/services.ts): groups of VMs made from a blueprint. A service owns an
  -- address block inside its network; its numbered revisions keep what each rollout rolls to
  -- (blueprint text, templates, variables, image digest); the rollout's state lives here too, so
  -- a restarted control plane carries on. Its instances are VMs naming it.
  CREATE TABLE services (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    network TEXT NOT NULL REFERENCES networks(name),
    block TEXT NOT NULL,
    zones INTEGER NOT NULL,
    count INTEGER NOT NULL,
    current_revision INTEGER NOT NULL,
    target_revision INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'deleting')),
    rollout TEXT NOT NULL CHECK (rollout IN ('done', 'rolling', 'failed')),
    rollout_message TEXT,
    warning TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE INDEX services_network ON services(network);
  CREATE TABLE service_revisions (
    service TEXT NOT NULL REFERENCES services(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    blueprint TEXT NOT NULL,
    file TEXT NOT NULL,
    files TEXT NOT NULL,
    vars TEXT NOT NULL,
    image TEXT NOT NULL,
    image_digest TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (service, number)
  );
  ALTER TABLE vms ADD COLUMN service TEXT;
  ALTER TABLE vms ADD COLUMN service_index INTEGER;
  ALTER TABLE vms ADD COLUMN service_revision INTEGER;
  CREATE INDEX vms_service ON vms(service) WHERE service IS NOT NULL;
  `,
  `
  -- Paths (server/paths.ts, issue 14): who may reach a service's instances. From a service of
  -- the same network or from a CIDR, to a service, on one protocol and an inclusive port range.
  -- A CIDR path that reaches beyond its network's own CIDR publishes its target on every node:
  -- host_port_lo is then where (host ports host_port_lo.. lead to port_lo..), else NULL. A
  -- path goes with either service it names (services.ts deletes them at service rm; the
  -- cascade is the backstop), so a new service of the same name never inherits old paths.
  CREATE TABLE paths (
    id TEXT PRIMARY KEY,
    network TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
    from_service TEXT REFERENCES services(name) ON DELETE CASCADE,
    from_cidr TEXT,
    to_service TEXT NOT NULL REFERENCES services(name) ON DELETE CASCADE,
    proto TEXT NOT NULL CHECK (proto IN ('tcp', 'udp')),
    port_lo INTEGER NOT NULL CHECK (port_lo BETWEEN 1 AND 65535),
    port_hi INTEGER NOT NULL CHECK (port_hi BETWEEN port_lo AND 65535),
    host_port_lo INTEGER CHECK (host_port_lo BETWEEN 1 AND 65535 - (port_hi - port_lo)),
    created_at TEXT NOT NULL,
    CHECK ((from_service IS NULL) != (from_cidr IS NULL)),
    CHECK (host_port_lo IS NULL OR from_cidr IS NOT NULL)
  );
  CREATE UNIQUE INDEX paths_unique ON paths(to_service, COALESCE(from_service, ''), COALESCE(from_cidr, ''), proto, port_lo, port_hi);
  CREATE INDEX paths_network ON paths(network);
  CREATE INDEX paths_from_service ON paths(from_service) WHERE from_service IS NOT NULL;
  `,
  `
  -- The metrics role (issue 15): a token that reads /metrics only, for Prometheus. The CHECK
  -- constraint changes, so the tokens table is copied into a new one (as for operator).
  CREATE TABLE tokens_new (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer', 'metrics', 'node')),
    node TEXT,
    created_at TEXT NOT NULL,
    description TEXT
  );
  INSERT INTO tokens_new (id, hash, role, node, created_at, description) SELECT id, hash, role, node, created_at, description FROM tokens;
  DROP TABLE tokens;
  ALTER TABLE tokens_new RENAME TO tokens;
  `,
  `
  -- Panel sessions (server/sessions.ts, issue 15): a browser's HTTP-only cookie stands for an API
  -- token. Only sha256 of the cookie's opaque id is kept (a copy of the database opens no
  -- session). A session goes with its token (revoking the token ends it at once), and ends at
  -- expires_at, fixed at sign-in (12 h): use does not extend it, so a request costs no write.
  -- csrf is the value changing requests must echo in x-csrf-token; it is no credential alone.
  CREATE TABLE sessions (
    hash TEXT PRIMARY KEY,
    token_id TEXT NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
  );
  CREATE INDEX sessions_token ON sessions(token_id);
  CREATE INDEX sessions_expires ON sessions(expires_at);
  `,
  `
  -- Disk snapshots (server/snapshots.ts, issue 16): read-only qcow2 files of a VM's backing
  -- chain on its node. parent: the snapshot the VM's disk stood on when it was taken (its
  -- backing file). vms.disk_snapshot: the one its current disk is an overlay on;
  -- vms.clone_snapshot: a clone's starting point (another VM's snapshot, on the same node);
  -- restore_snapshot/restore_gen: a restore the node carries out once per generation.
  CREATE TABLE snapshots (
    id TEXT PRIMARY KEY,
    vm_id TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    node TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'ready', 'failed', 'lost')),
    reason TEXT,
    pause_ms REAL,
    size_bytes INTEGER,
    parent TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (vm_id, name)
  );
  CREATE INDEX snapshots_node ON snapshots(node, state);
  ALTER TABLE vms ADD COLUMN disk_snapshot TEXT;
  ALTER TABLE vms ADD COLUMN clone_snapshot TEXT;
  ALTER TABLE vms ADD COLUMN restore_snapshot TEXT;
  ALTER TABLE vms ADD COLUMN restore_gen INTEGER NOT NULL DEFAULT 0;
  `,
  `
  -- Memory snapshots (server/vms.ts suspend/resume, issue 16): power 'suspended' keeps the VM's
  -- RAM and device state on its node. released = 1: suspended with --release, so its CPUs
  -- and memory are not counted on the node (its disk still is) until a resume fits them again.
  ALTER TABLE vms ADD COLUMN released INTEGER NOT NULL DEFAULT 0;
  `,
  `
  -- tokens.role: checked in code (issueToken in server/auth.ts, the one writer of tokens), no
  -- longer by a CHECK constraint, which SQLite changes only by copying the table: one copy per
  -- new role. This is the last such copy. With foreign keys on (they cannot be turned off
  -- inside a migration's transaction) dropping the old table deletes its rows first, and the
  -- panel sessions with them (ON DELETE CASCADE): they are kept aside and put back.
  CREATE TEMP TABLE sessions_kept AS SELECT * FROM sessions;
  CREATE TABLE tokens_new (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    role TEXT NOT NULL,
    node TEXT,
    created_at TEXT NOT NULL,
    description TEXT
  );
  INSERT INTO tokens_new (id, hash, role, node, created_at, description) SELECT id, hash, role, node, created_at, description FROM tokens;
  DROP TABLE tokens;
  ALTER TABLE tokens_new RENAME TO tokens;
  INSERT INTO sessions SELECT * FROM sessions_kept;
  DROP TABLE sessions_kept;
  `,
  `
  -- Exports (server/exports.ts, issue 16): a VM's snapshot flattened by its node and uploaded
  -- to the blob store. image: the image it makes (image create --from-vm), deleted once that
  -- image exists; NULL: the base of a clone on another node (vms.clone_export), kept while the
  -- clone exists. No foreign key to the VM: a clone's base outlives its source.
  CREATE TABLE exports (
    id TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    vm_id TEXT NOT NULL,
    vm_name TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    snapshot_name TEXT NOT NULL,
    image TEXT UNIQUE,
    -- The VM's image when asked: a kernel image's export makes a kernel image (its kernel,
    -- initrd and command line, the export as its root disk); kind is the image it makes.
    source_image TEXT,
    kind TEXT NOT NULL DEFAULT 'disk' CHECK (kind IN ('disk', 'kernel')),
    state TEXT NOT NULL CHECK (state IN ('pending', 'ready', 'failed')),
    reason TEXT,
    sha256 TEXT,
    format TEXT,
    size_bytes INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE INDEX exports_node ON exports(node, state);
  ALTER TABLE vms ADD COLUMN clone_export TEXT;
  -- The 1 s sweep (Exports.collect) looks up each clone base's clone: an index, not a scan of every VM.
  CREATE INDEX vms_clone_export ON vms(clone_export) WHERE clone_export IS NOT NULL;
  `,
  `
  -- Scale to zero (issue 16): idle_stop, the idle time as given (\`10m\`) or NULL; wake_gen,
  -- bumped by a user's resume of a VM its agent suspended for idleness (the agent wakes it);
  -- woken_at, the time of the last wake its agent reported (one vm.wake event each).
  ALTER TABLE vms ADD COLUMN idle_stop TEXT;
  ALTER TABLE vms ADD COLUMN wake_gen INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE vms ADD COLUMN woken_at TEXT;
  `,
  `
  -- Memory snapshots (server/snapshots.ts, issue 16: vm snapshot --memory): memory = 1 keeps
  -- the guest's RAM and device state with the disk snapshot (snapshots/<id>.memory on its
  -- node); memory_bytes its size once ready; memory_cpus and memory_ram_bytes the VM's vCPUs
  -- and memory when it was taken (a restore needs the same: the state is of those devices).
  ALTER TABLE snapshots ADD COLUMN memory INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE snapshots ADD COLUMN memory_bytes INTEGER;
  ALTER TABLE snapshots ADD COLUMN memory_cpus INTEGER;
  ALTER TABLE snapshots ADD COLUMN memory_ram_bytes INTEGER;
  `,
  `
  -- Warm images (server/warm.ts, issue 16): one saved template state per image and node.
  -- state: warming (the node boots the template), ready (clones start from it), failed
  -- (reason). vms.start: 'warm' or 'cold' (start_reason: why cold when warm was possible);
  -- vms.warm_id: the warm state its first start restores.
  CREATE TABLE image_warm (
    id TEXT PRIMARY KEY,
    image TEXT NOT NULL,
    node TEXT NOT NULL,
    cpus INTEGER NOT NULL,
    memory_bytes INTEGER NOT NULL,
    nics INTEGER NOT NULL DEFAULT 1,
    state TEXT NOT NULL CHECK (state IN ('warming', 'ready', 'failed')),
    reason TEXT,
    size_bytes INTEGER,
    ready_at TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (image, node)
  );
  CREATE INDEX image_warm_node ON image_warm(node);
  ALTER TABLE vms ADD COLUMN start TEXT NOT NULL DEFAULT 'cold';
  ALTER TABLE vms ADD COLUMN start_reason TEXT;
  ALTER TABLE vms ADD COLUMN warm_id TEXT;
  `,
  `
  -- Networks lingering on a node after its last VM there went (server/network-linger.ts):
  -- the node keeps them built until \`until\`, so a VM created there meanwhile finds them up.
  CREATE TABLE network_linger (
    network TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
    node TEXT NOT NULL REFERENCES nodes(name) ON DELETE CASCADE,
    until TEXT NOT NULL,
    PRIMARY KEY (network, node)
  );
  CREATE INDEX network_linger_node ON network_linger(node);
  `,
];
