/**
 * Warm images (issue 16), the pure parts: the identity a warm clone is given, what the
 * template boots with, how the node sees the guest is ready, and whether a new VM starts warm.
 *
 * How a clone becomes itself: the template's guest (`butter.warm=1` on its kernel command
 * line) stops before it touches its network or disk and polls the fw_cfg file
 * `opt/butter/identity` (`WARM_FW_CFG`), which reads all zeros in the template. fw_cfg contents
 * are not migrated, so a clone restored from the template's state reads the identity its own
 * QEMU was given: a new generation (which wakes it), its MAC (the restored virtio-net device
 * still carries the template's), a random seed and its address (so it needs no DHCP). The
 * length is fixed: the guest's fw_cfg driver listed the file, with its size, in the template.
 */

import { checkIpv4 } from './ipv4.ts';

/** The template's NIC: never on a bridge (its tap is QEMU's own, down, unattached), so any fixed MAC does. */
export const TEMPLATE_MAC = '52:54:00:00:00:01';

/** A console line by which the guest says it is ready to be saved (`butter-tiny: warm-ready`). */
export const WARM_READY_LINE = /^[^\n]*: warm-ready\r?$/m;

/** How long the node waits for that line before the warm state fails (a guest that does not know it). */
export const WARM_READY_TIMEOUT_MS = 60_000;

/** The kernel command line knob that makes the tiny guest wait for a clone's identity. */
export const WARM_CMDLINE_FLAG = 'butter.warm=1';

const HEX = /^[0-9a-f]+$/;

/**
 * The identity's length in bytes, padded with spaces: the guest's fw_cfg driver listed the
 * file with its size in the template, so a clone's must be exactly as long. Room for the
 * longest address (a 63-character network's domain).
 */
export const WARM_IDENTITY_BYTES = 320;

/** The length of the identity of a warm state made before addresses were in it (they read 112 bytes, and get no address). */
export const WARM_IDENTITY_BYTES_V1 = 112;

/**
 * A clone's address on its first NIC, which it sets itself at once instead of asking DHCP for
 * it (two round trips and a script, a large part of a warm start under TCG): the very lease
 * dnsmasq would give it, the reservation the control plane allocated.
 */
export interface WarmAddress {
  ip: string;
  prefix: number;
  gateway: string;
  mtu: number;
  /** The network's DNS domain (`<network>.internal`), its resolver's search domain. */
  domain: string;
}

/**
 * `gen=<16 hex> mac=<mac> seed=<64 hex>`, then the address (`ip=<ip>/<prefix> gw=<gateway>
 * mtu=<mtu> dom=<domain>`) if there is one and it fits, padded with spaces to `bytes`: the
 * template's is all zeros. An address that does not fit (a warm state of the older, 112-byte
 * identity) is left out, and that clone asks DHCP as before. Throws on anything malformed
 * (the guest's shell parses it word by word).
 */
export function warmIdentity(gen: string, mac: string, seed: string, address?: WarmAddress, bytes = WARM_IDENTITY_BYTES): string {
  if (gen.length !== 16 || !HEX.test(gen)) throw new Error(`warm identity: generation must be 16 hex digits, not ${JSON.stringify(gen)}`);
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)) throw new Error(`warm identity: bad MAC ${JSON.stringify(mac)}`);
  if (seed.length !== 64 || !HEX.test(seed)) throw new Error('warm identity: the seed must be 64 hex digits');
  const base = `gen=${gen} mac=${mac} seed=${seed}`;
  if (base.length > bytes) throw new Error(`warm identity: ${bytes} bytes cannot hold it`);
  let text = base;
  if (address) {
    checkIpv4(address.ip, 'warm identity: ip');
    checkIpv4(address.gateway, 'warm identity: gateway');
    if (!Number.isInteger(address.prefix) || address.prefix < 1 || address.prefix > 32) throw new Error(`warm identity: bad prefix ${address.prefix}`);
    if (!Number.isInteger(address.mtu) || address.mtu < 576 || address.mtu > 65535) throw new Error(`warm identity: bad mtu ${address.mtu}`);
    if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(address.domain) || address.domain.length > 253) throw new Error(`warm identity: bad domain ${JSON.stringify(address.domain)}`);
    const withAddress = `${base} ip=${address.ip}/${address.prefix} gw=${address.gateway} mtu=${address.mtu} dom=${address.domain}`;
    if (withAddress.length <= bytes) text = withAddress;
  }
  return text.padEnd(bytes, ' ');
}

/** What the template reads: generation 0, which no clone ever gets. */
export const TEMPLATE_IDENTITY = warmIdentity('0'.repeat(16), '00:00:00:00:00:00', '0'.repeat(64));

/** The template's command line, which its clones keep (it is in their restored RAM, and QEMU's argv must match). */
export function templateCmdline(cmdline: string): string {
  return cmdline.split(/\s+/).includes(WARM_CMDLINE_FLAG) ? cmdline : `${cmdline} ${WARM_CMDLINE_FLAG}`.trim();
}

/** A warm state as the control plane has it (one per image and node). */
export interface WarmEntry {
  id: string;
  node: string;
  state: 'warming' | 'ready' | 'failed';
  reason: string | null;
  cpus: number;
  memoryBytes: number;
  nics: number;
}

/** What a new VM would be: its node, size, NIC count, data disks, and whether it is a clone of a snapshot. */
export interface WarmCandidate {
  node: string;
  cpus: number;
  memoryBytes: number;
  nics: number;
  dataDisks: number;
  clone: boolean;
}

export type StartPlan = { start: 'warm'; warm: string } | { start: 'cold'; reason: string | null };

/**
 * Warm when the image has a ready warm state on the VM's node with the same CPUs, memory and
 * NIC count (the restored devices must be the template's); else cold, saying why. An image
 * with no warm state anywhere is cold with no reason (nothing was possible).
 */
export function startPlan(entries: readonly WarmEntry[], vm: WarmCandidate): StartPlan {
  if (entries.length === 0) return { start: 'cold', reason: null };
  const here = entries.find((e) => e.node === vm.node);
  if (!here) return { start: 'cold', reason: `no warm state on node ${vm.node} (warm on ${entries.map((e) => e.node).join(', ')})` };
  if (here.state === 'warming') return { start: 'cold', reason: `the warm state on ${vm.node} is still warming` };
  if (here.state === 'failed') return { start: 'cold', reason: `warming failed on ${vm.node}: ${here.reason ?? 'unknown'}` };
  if (vm.clone) return { start: 'cold', reason: "a clone starts from its source's snapshot" };
  if (here.cpus !== vm.cpus || here.memoryBytes !== vm.memoryBytes) {
    return { start: 'cold', reason: `different size: the warm state is ${here.cpus} cpu, ${here.memoryBytes / 1024 ** 2} MiB; this VM ${vm.cpus} cpu, ${vm.memoryBytes / 1024 ** 2} MiB` };
  }
  if (here.nics !== vm.nics) return { start: 'cold', reason: `different NIC count: the warm state has ${here.nics}, this VM ${vm.nics}` };
  if (vm.dataDisks > 0) return { start: 'cold', reason: 'data disks: the warm state has none' };
  return { start: 'warm', warm: here.id };
}
