/**
 * The agent's metadata server for a host test, run inside the namespace that plays the host:
 * `metadata-serve.ts '{"address": …, "port": …, "vms": {"<ip>": VmMetadata}}'`. Prints
 * `listening` once it does; SIGTERM closes it.
 */
import { createMetadataServer } from '../../src/agent/metadata/server.ts';
import type { VmMetadata } from '../../src/agent/metadata/types.ts';

const { address, port, vms } = JSON.parse(process.argv[2] ?? '{}') as { address: string; port: number; vms: Record<string, VmMetadata> };
const server = createMetadataServer({ lookup: (ip) => vms[ip], onFetch: () => {} });
await server.listen(address, port);
process.stdout.write('listening\n');
process.on('SIGTERM', () => void server.close().finally(() => process.exit(0)));
