/** TEMP blueprint stub (dropped at merge): the fixed interface of i13-blueprint, minimally. */
import nunjucks from 'nunjucks';
import { parse } from 'yaml';
import { parseSize } from '../units.ts';

export interface Blueprint {
  network: { subnetworkMaxInstanceCount: number };
  placement: { availabilityZones: number };
  instance: { publicIp: boolean; memoryBytes: number; cpus: number; gpu: false; rootDiskBytes: number | undefined; dataDisks: { sizeBytes: number; deviceName?: string }[] };
  image: { name: string };
  initialization: { path: string; vars: Record<string, { required: boolean; default?: unknown }> }[];
  count: number | undefined;
}

export class BlueprintError extends Error {
  constructor(readonly file: string, readonly line: number | undefined, readonly column: number | undefined, readonly path: string, readonly detail: string) {
    super(`${file}${line !== undefined ? `:${line}:${column ?? 1}` : ''}: ${path ? `${path}: ` : ''}${detail}`);
  }
}

const KEYS: Record<string, string[]> = { '': ['network', 'placement', 'instance', 'image', 'initialization', 'count'], network: ['subnetwork_max_instance_count'], placement: ['availability_zones'], instance: ['public_ip', 'memory', 'cpus', 'gpu', 'disks'], image: ['name'] };

function size(file: string, path: string, v: unknown): number {
  const b = typeof v === 'string' ? parseSize(v.replace(/B$/i, '')) : undefined;
  if (b === undefined) throw new BlueprintError(file, undefined, undefined, path, `${JSON.stringify(v)} is not a size (e.g. 4GB or 4G)`);
  return b;
}

export function parseBlueprint(text: string, file: string): Blueprint {
  let doc: Record<string, Record<string, unknown>>;
  try {
    doc = (parse(text) ?? {}) as typeof doc;
  } catch (e) {
    throw new BlueprintError(file, 1, 1, '', (e as Error).message);
  }
  for (const [sect, keys] of Object.entries(KEYS)) {
    const obj = sect ? doc[sect] : doc;
    for (const k of Object.keys(obj ?? {})) if (!keys.includes(k)) throw new BlueprintError(file, undefined, undefined, sect ? `${sect}.${k}` : k, 'unknown key');
  }
  const inst = doc.instance ?? {};
  if (inst.gpu === true) throw new BlueprintError(file, undefined, undefined, 'instance.gpu', 'GPU passthrough is not supported yet');
  const disks = (inst.disks ?? []) as { size: string; device_name?: string }[];
  const cpus = inst.cpus ?? 1;
  if (typeof cpus !== 'number') throw new BlueprintError(file, undefined, undefined, 'instance.cpus', 'must be a number');
  const image = doc.image?.name;
  if (typeof image !== 'string') throw new BlueprintError(file, undefined, undefined, 'image.name', 'is required');
  return {
    network: { subnetworkMaxInstanceCount: (doc.network?.subnetwork_max_instance_count as number | undefined) ?? 256 },
    placement: { availabilityZones: (doc.placement?.availability_zones as number | undefined) ?? 1 },
    instance: {
      publicIp: inst.public_ip === true,
      memoryBytes: inst.memory !== undefined ? size(file, 'instance.memory', inst.memory) : 512 * 1024 ** 2,
      cpus,
      gpu: false,
      rootDiskBytes: disks[0] ? size(file, 'instance.disks[0].size', disks[0].size) : undefined,
      dataDisks: disks.slice(1).map((d, i) => ({ sizeBytes: size(file, `instance.disks[${i + 1}].size`, d.size), ...(d.device_name ? { deviceName: d.device_name } : {}) })),
    },
    image: { name: image },
    initialization: ((doc.initialization ?? []) as unknown as { path: string; vars?: Record<string, { required?: boolean }> }[]).map((i) => ({
      path: i.path,
      vars: Object.fromEntries(Object.entries(i.vars ?? {}).map(([k, v]) => [k, { required: v?.required === true }])),
    })),
    count: doc.count as unknown as number | undefined,
  };
}

export function templatePaths(bp: Blueprint): string[] {
  return bp.initialization.map((i) => i.path);
}

export interface RenderInput {
  files: Record<string, string>;
  vars: Record<string, unknown>;
  builtins: { service: string; network: string; index: number; dnsName: string; instanceName?: string };
}

export function renderUserData(bp: Blueprint, input: RenderInput): string {
  const env = new nunjucks.Environment(null, { throwOnUndefined: true, autoescape: false });
  const out = bp.initialization.map((init, n) => {
    const text = input.files[init.path];
    if (text === undefined) throw new BlueprintError(init.path, undefined, undefined, `initialization[${n}].path`, `template ${init.path} not given`);
    for (const [k, v] of Object.entries(init.vars)) if (v.required && !(k in input.vars)) throw new BlueprintError(init.path, undefined, undefined, `initialization[${n}].vars.${k}`, `required variable ${k} is missing`);
    try {
      const b = input.builtins;
      return env.renderString(text, { ...input.vars, service: b.service, network: b.network, index: b.index, dns_name: b.dnsName, instance_name: b.instanceName });
    } catch (e) {
      throw new BlueprintError(init.path, undefined, undefined, `initialization[${n}]`, (e as Error).message);
    }
  });
  return out.join('\n');
}

export function checkRender(bp: Blueprint, input: RenderInput): void {
  renderUserData(bp, input);
}
