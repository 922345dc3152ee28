/**
 * A blueprint's YAML to a `Blueprint`: the original Butter's keys (snake_case), plus `count`.
 * As lenient as the original about what may be left out (it read network, placement and
 * initialization without defaults; we give them), strict on unknown keys and on types.
 */
import { isMap, isScalar, type Pair } from 'yaml';
import { isVarName, reservedName } from './builtins.ts';
import { flag, join, listItems, mapFields, missing, size, text, wholeNumber, type Field } from './fields.ts';
import { IMAGE_PATTERN } from './image-glob.ts';
import type { Blueprint, InitFile, VarSpec } from './types.ts';
import { MAX_IDLE_STOP_MS, MIN_IDLE_STOP_MS, parseIdleStop } from '../scale-to-zero/idle-plan.ts';
import { describe, type YamlSource } from './yaml-source.ts';

/** When `network.subnetwork_max_instance_count` is absent: a /24's worth (the original had none). */
export const DEFAULT_SUBNETWORK_MAX_INSTANCES = 256;
/** When `placement.availability_zones` is absent (the original said 3; Butter's clouds are small). */
export const DEFAULT_AVAILABILITY_ZONES = 1;
/** As `vm create`'s limit. */
export const MAX_CPUS = 64;

const EMPTY: Blueprint = {
  network: { subnetworkMaxInstanceCount: 0 },
  placement: { availabilityZones: 0 },
  instance: { publicIp: false, memoryBytes: 0, cpus: 0, gpu: false, rootDiskBytes: undefined, dataDisks: [] },
  image: { name: '' },
  initialization: [],
  count: undefined,
};

const TOP = ['network', 'placement', 'instance', 'image', 'initialization', 'count'] as const;

export function validate(src: YamlSource): Blueprint {
  const root = src.doc.contents;
  const top = mapFields(src, root, '', TOP);
  if (!top) return EMPTY; // not a map: that one problem says it all
  const get = (k: string): Field | undefined => top.get(k);

  const network = section(src, get('network'), 'network', ['subnetwork_max_instance_count']);
  const maxCount = network?.get('subnetwork_max_instance_count');
  const placement = section(src, get('placement'), 'placement', ['availability_zones']);
  const zones = placement?.get('availability_zones');
  const count = get('count');

  const bp: Blueprint = {
    network: {
      subnetworkMaxInstanceCount: maxCount ? wholeNumber(src, maxCount.value, 'network.subnetwork_max_instance_count', 1, 65536) ?? 0 : DEFAULT_SUBNETWORK_MAX_INSTANCES,
    },
    placement: { availabilityZones: zones ? wholeNumber(src, zones.value, 'placement.availability_zones', 1, 64) ?? 0 : DEFAULT_AVAILABILITY_ZONES },
    instance: instance(src, get('instance'), root),
    image: image(src, get('image'), root),
    initialization: initialization(src, get('initialization')),
    count: count ? wholeNumber(src, count.value, 'count', 1, 10000) : undefined,
  };
  if (bp.count !== undefined && bp.network.subnetworkMaxInstanceCount > 0 && bp.count > bp.network.subnetworkMaxInstanceCount) {
    src.problem(count!.value, 'count', `${bp.count} is more than network.subnetwork_max_instance_count (${bp.network.subnetworkMaxInstanceCount}${maxCount ? '' : ', its default'}): the service's address block would not hold them`);
  }
  return bp;
}

function section(src: YamlSource, field: Field | undefined, path: string, known: readonly string[]) {
  return field ? mapFields(src, field.value, path, known) : new Map<string, Field>();
}

function instance(src: YamlSource, field: Field | undefined, root: unknown): Blueprint['instance'] {
  const out: Blueprint['instance'] = { publicIp: false, memoryBytes: 0, cpus: 0, gpu: false, rootDiskBytes: undefined, dataDisks: [] };
  if (!field) {
    missing(src, root, 'instance', 'instance: { memory: 1G, cpus: 1 }');
    return out;
  }
  const f = mapFields(src, field.value, 'instance', ['public_ip', 'memory', 'cpus', 'gpu', 'disks', 'idle_stop']);
  if (!f) return out;
  const publicIp = f.get('public_ip');
  if (publicIp) out.publicIp = flag(src, publicIp.value, 'instance.public_ip') ?? false;
  const memory = f.get('memory');
  if (memory) out.memoryBytes = size(src, memory.value, 'instance.memory') ?? 0;
  else missing(src, field.value, 'instance.memory', 'memory: 4GB');
  const cpus = f.get('cpus');
  if (cpus) out.cpus = wholeNumber(src, cpus.value, 'instance.cpus', 1, MAX_CPUS) ?? 0;
  else missing(src, field.value, 'instance.cpus', 'cpus: 1');
  const gpu = f.get('gpu');
  if (gpu && flag(src, gpu.value, 'instance.gpu') === true) src.problem(gpu.value, 'instance.gpu', 'GPU passthrough is not supported yet (say gpu: false, or leave it out)');
  // Scale to zero (issue 16): each instance is suspended by its node after this long without traffic.
  const idle = f.get('idle_stop');
  if (idle) {
    const v = isScalar(idle.value) ? idle.value.value : undefined;
    const ms = typeof v === 'string' ? parseIdleStop(v) : undefined;
    if (ms === undefined || ms < MIN_IDLE_STOP_MS || ms > MAX_IDLE_STOP_MS) src.problem(idle.value, 'instance.idle_stop', `must be a duration like 30s, 10m or 2h, from 5s to 168h (got ${describe(idle.value)})`);
    else out.idleStop = v as string;
  }
  const disks = f.get('disks');
  if (disks) {
    const items = listItems(src, disks.value, 'instance.disks') ?? [];
    items.forEach((d, i) => {
      const disk = readDisk(src, d, `instance.disks[${i}]`);
      if (!disk) return;
      if (i === 0) out.rootDiskBytes = disk.sizeBytes;
      else out.dataDisks.push(disk);
    });
  }
  return out;
}

function readDisk(src: YamlSource, node: unknown, path: string): { sizeBytes: number; deviceName?: string } | undefined {
  const f = mapFields(src, node, path, ['size', 'type', 'device_name']);
  if (!f) return undefined;
  const sz = f.get('size');
  const sizeBytes = sz ? size(src, sz.value, join(path, 'size')) : (missing(src, node, join(path, 'size'), 'size: 8GB'), undefined);
  const type = f.get('type');
  if (type) {
    const t = text(src, type.value, join(path, 'type'));
    if (t !== undefined && t !== 'standard') src.problem(type.value, join(path, 'type'), `${describe(type.value)}: only standard disks exist`);
  }
  const dev = f.get('device_name');
  const deviceName = dev ? text(src, dev.value, join(path, 'device_name')) : undefined;
  if (sizeBytes === undefined) return undefined;
  return deviceName === undefined ? { sizeBytes } : { sizeBytes, deviceName };
}

function image(src: YamlSource, field: Field | undefined, root: unknown): Blueprint['image'] {
  if (!field) {
    missing(src, root, 'image', 'image: { name: tiny }');
    return { name: '' };
  }
  const f = mapFields(src, field.value, 'image', ['name']);
  if (!f) return { name: '' };
  const name = f.get('name');
  if (!name) {
    missing(src, field.value, 'image.name', 'name: debian-12-*');
    return { name: '' };
  }
  const n = text(src, name.value, 'image.name');
  if (n !== undefined && !IMAGE_PATTERN.test(n)) {
    src.problem(name.value, 'image.name', `${describe(name.value)} is not an image name or a glob of one (lowercase letters, digits, "-", and * ? [...]; e.g. tiny or debian-12-*)`);
  }
  return { name: n ?? '' };
}

function initialization(src: YamlSource, field: Field | undefined): InitFile[] {
  if (!field) return [];
  const items = listItems(src, field.value, 'initialization') ?? [];
  return items.flatMap((item, i) => {
    const path = `initialization[${i}]`;
    const f = mapFields(src, item, path, ['path', 'vars']);
    if (!f) return [];
    const p = f.get('path');
    const file = p ? templatePath(src, p.value, join(path, 'path')) : (missing(src, item, join(path, 'path'), 'path: cloud-config.yml'), undefined);
    const vars = f.get('vars');
    const specs = vars ? varSpecs(src, vars.value, join(path, 'vars')) : {};
    return file === undefined ? [] : [{ path: file, vars: specs }];
  });
}

/**
 * A template's path: relative to the blueprint's directory and staying inside it, so a
 * blueprint from elsewhere cannot put `~/.ssh/id_ed25519` or `/etc/shadow` into user-data.
 */
function templatePath(src: YamlSource, node: unknown, path: string): string | undefined {
  const p = text(src, node, path);
  if (p === undefined) return undefined;
  if (p.startsWith('/') || p.startsWith('~')) {
    src.problem(node, path, `${describe(node)} must be relative to the blueprint's directory`);
    return undefined;
  }
  const parts: string[] = [];
  for (const part of p.split('/')) {
    if (part === '..') {
      if (parts.pop() === undefined) {
        src.problem(node, path, `${describe(node)} leaves the blueprint's directory`);
        return undefined;
      }
    } else if (part !== '.' && part !== '') parts.push(part);
  }
  if (parts.length === 0) {
    src.problem(node, path, `${describe(node)} names no file`);
    return undefined;
  }
  return p;
}

function varSpecs(src: YamlSource, node: unknown, path: string): Record<string, VarSpec> {
  const out: Record<string, VarSpec> = {};
  const n = src.resolve(node);
  if (isScalar(n) && n.value === null) return out;
  if (!isMap(n)) {
    src.problem(n, path, `must be a map of variable names to { required, default } (got ${describe(n)})`);
    return out;
  }
  // Any key is a variable name here, so mapFields' known-keys check is for each spec only.
  for (const pair of n.items as Pair[]) {
    const name = isScalar(pair.key) ? String(pair.key.value) : '?';
    const at = join(path, name);
    if (!isVarName(name)) {
      src.problem(pair.key, at, 'is not a variable name (letters, digits and _, not starting with a digit)');
      continue;
    }
    const reserved = reservedName(name);
    if (reserved) {
      src.problem(pair.key, at, reserved);
      continue;
    }
    const f = pair.value === null ? new Map<string, Field>() : mapFields(src, pair.value, at, ['required', 'default']);
    if (!f) continue;
    const required = f.get('required');
    const spec: VarSpec = { required: required ? flag(src, required.value, join(at, 'required')) ?? false : false };
    const dflt = f.get('default');
    if (dflt) spec.default = src.toJS(dflt.value);
    out[name] = spec;
  }
  return out;
}
