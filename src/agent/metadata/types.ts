/**
 * Shapes shared by the metadata server's parts.
 *
 * Trust rule: a VM's identity comes ONLY from the source address of the packet that reached
 * the server. The host's bridge drops frames whose source IP/MAC do not belong to the tap
 * they came from, so the address is as trustworthy as the host. Nothing the guest sends
 * (headers, query string, path) is ever used to choose which VM's data to serve.
 */

/** Everything the server may tell one VM about itself. Built by the agent, never by the guest. */
export interface VmMetadata {
  vmId: string;
  /** cloud-init's instance-id; changing it makes cloud-init treat the next boot as a first boot. */
  instanceId: string;
  hostname: string;
  localIpv4: string;
  mac: string;
  /** Served verbatim (a #cloud-config document, a script, a MIME multipart...). */
  userData: string;
  /** Served verbatim; the operator's layer beneath user-data. */
  vendorData: string;
  /** OpenSSH public keys, one per entry (`ssh-ed25519 AAAA... comment`). */
  sshKeys: string[];
  /** Set when the VM's private network needs a smaller MTU (e.g. an overlay's encapsulation). */
  mtu?: number;
  /** Its NICs after eth0, in order (eth1, eth2, ...). */
  moreNics?: { mac: string; mtu?: number }[];
  /**
   * EC2 paths only (NoCloud answers plain GETs either way): `optional` serves tokenless GETs
   * as well as IMDSv2 tokens, `required` only GETs with a token (ec2.ts).
   */
  metadataTokens: 'optional' | 'required';
}

/** The agent's side of the server: who is behind an address, and who just fetched what. */
export interface MetadataSource {
  /** The VM that owns `sourceIp` (plain dotted IPv4, `::ffff:` already stripped), if any. */
  lookup(sourceIp: string): VmMetadata | undefined;
  /**
   * Called after a successful fetch of meta-data or user-data (NoCloud or EC2 style).
   * The agent uses it as the "guest is up and running cloud-init" signal. Must not throw;
   * if it does, the error goes to the server's `onError` and the guest's reply is unaffected.
   */
  onFetch(vmId: string, path: string): void;
}

/** One reply, computed by a route and written by the server; keeps routes free of node:http. */
export interface MetadataReply {
  status: number;
  body: string;
  /** Written first, in this order: the token reply's first header is what the gateway namespace looks for. */
  headers?: Record<string, string>;
  /** When true the server reports the fetch to `MetadataSource.onFetch`. */
  countsAsFetch?: boolean;
}
