/** The shapes of a validated blueprint and of one rendering: what services code against. */

/** One declared template variable: `required: true` must be given; `default` fills it in when not. */
export interface VarSpec {
  required: boolean;
  default?: unknown;
}

/** An `initialization` entry: a template file (relative to the blueprint) and its variables. */
export interface InitFile {
  path: string;
  vars: Record<string, VarSpec>;
}

/** A blueprint, validated and normalised (camelCase, sizes in bytes, defaults filled in). */
export interface Blueprint {
  network: { subnetworkMaxInstanceCount: number };
  placement: { availabilityZones: number };
  instance: {
    publicIp: boolean;
    memoryBytes: number;
    cpus: number;
    gpu: false;
    /** `disks[0].size`, when disks are given; else the VM default applies. */
    rootDiskBytes: number | undefined;
    /** `disks[1..]`: extra data disks of each instance. */
    dataDisks: { sizeBytes: number; deviceName?: string }[];
    /** `idle_stop` (scale to zero): each instance sleeps after this long without traffic; undefined: never. */
    idleStop?: string;
  };
  /** An image name, or a glob over names (`debian-12-*`) of which the newest match is meant. */
  image: { name: string };
  initialization: InitFile[];
  /** Instances wanted; undefined: the caller uses `placement.availabilityZones`, as the original. */
  count: number | undefined;
}

/** What a template sees besides the service's own variables (see TEMPLATE_BUILTINS). */
export interface Builtins {
  service: string;
  network: string;
  index: number;
  dnsName: string;
  /** The instance's VM name, when the caller knows it already. */
  instanceName?: string;
}

export interface RenderInput {
  /** Template path, as written in the blueprint -> its text. */
  files: Record<string, string>;
  /** The service's variables (strings, numbers, lists, maps). */
  vars: Record<string, unknown>;
  builtins: Builtins;
}
