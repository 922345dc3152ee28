/**
 * Pure renderers for the NoCloud data source (cloud-init's `ds=nocloud;s=http://169.254.169.254/`).
 * cloud-init fetches `meta-data`, `user-data`, `vendor-data` and `network-config` from that
 * prefix; user-data and vendor-data are served verbatim, the other two are rendered here.
 */
import { stringify } from 'yaml';
import type { VmMetadata } from './types.ts';

/**
 * cloud-init parses these files with PyYAML, which follows YAML 1.1: there an unquoted
 * `52:54:00:12:34:56` is a base-60 integer and a hostname such as `no` or `on` is a boolean.
 * Writing every string value double-quoted (keys stay plain) means no value can change type
 * in any YAML version's resolver, and quoting also makes a stray newline in a key an escape
 * instead of new YAML. lineWidth 0 keeps long ssh keys on one line.
 */
const YAML_OPTIONS = { defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN', lineWidth: 0 } as const;

/** NoCloud `meta-data`: identity, hostname and ssh keys. */
export function renderMetaData(md: VmMetadata): string {
  return stringify(
    {
      'instance-id': md.instanceId,
      'local-hostname': md.hostname,
      // A list is one of the shapes cloud-init's normalize_pubkey_data accepts; [] means none.
      'public-keys': [...md.sshKeys],
    },
    YAML_OPTIONS,
  );
}

/**
 * NoCloud `network-config`, netplan-style version 2. The NIC is matched by MAC (the kernel
 * name differs between machine types) and renamed to eth0 so images and docs can rely on it,
 * as cloud-init's own fallback config does. Addresses come from the host's DHCP server.
 */
export function renderNetworkConfig(md: VmMetadata): string {
  const eth0: Record<string, unknown> = {
    match: { macaddress: md.mac.toLowerCase() },
    'set-name': 'eth0',
    dhcp4: true,
  };
  if (md.mtu !== undefined) eth0['mtu'] = md.mtu;
  const ethernets: Record<string, Record<string, unknown>> = { eth0 };
  // Further NICs likewise; their DHCP gives no router, so the default route stays on eth0.
  (md.moreNics ?? []).forEach((nic, i) => {
    const name = `eth${i + 1}`;
    ethernets[name] = { match: { macaddress: nic.mac.toLowerCase() }, 'set-name': name, dhcp4: true, ...(nic.mtu !== undefined ? { mtu: nic.mtu } : {}) };
  });
  return stringify({ version: 2, ethernets }, YAML_OPTIONS);
}
