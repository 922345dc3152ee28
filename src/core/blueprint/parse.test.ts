import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BlueprintError, parseBlueprint, templatePaths, type Blueprint } from './index.ts';
import { GiB, MiB } from '../units.ts';

/** The issue's example blueprint, verbatim. */
const ISSUE_EXAMPLE = `network: { subnetwork_max_instance_count: 768 }
placement: { availability_zones: 3 }
instance:
  public_ip: true
  memory: 4GB
  cpus: 1
  gpu: false
  disks: [ { size: 8GB, type: standard, device_name: /dev/sda1 } ]
image: { name: tiny }
initialization:
  - path: haproxy-cloud-config.yml
    vars: { PrivateIps: { required: true } }
count: 3
`;

/** The original Butter README's example (AWS image name aside: ours are DNS labels). */
const ORIGINAL_README = `---
network:
  subnetwork_max_instance_count: 768

placement:
  availability_zones: 3

instance:
  public_ip: True
  memory: 4GB
  cpus: 1
  gpu: false
  disks:
    - size: 8GB
      type: standard
      device_name: /dev/sda1

image:
  name: "ubuntu-xenial-16-04-*"

initialization:
  - path: "haproxy-cloud-config.yml"
    vars:
      PrivateIps:
        required: true
`;

/** The one problem a text has: file, line, column, key path and words. */
function problem(text: string): [number | undefined, number | undefined, string, string] {
  try {
    parseBlueprint(text, 'bp.yml');
  } catch (e) {
    assert.ok(e instanceof BlueprintError, String(e));
    assert.equal(e.file, 'bp.yml');
    assert.equal(e.problems.length, 1, e.message);
    return [e.line, e.column, e.path, e.detail];
  }
  assert.fail('parsed without a problem');
}

const MINIMAL = 'instance: { memory: 1G, cpus: 1 }\nimage: { name: tiny }\n';

test("the issue's example parses, normalised", () => {
  const bp = parseBlueprint(ISSUE_EXAMPLE, 'bp.yml');
  assert.deepEqual(bp, {
    network: { subnetworkMaxInstanceCount: 768 },
    placement: { availabilityZones: 3 },
    instance: { publicIp: true, memoryBytes: 4 * GiB, cpus: 1, gpu: false, rootDiskBytes: 8 * GiB, dataDisks: [] },
    image: { name: 'tiny' },
    initialization: [{ path: 'haproxy-cloud-config.yml', vars: { PrivateIps: { required: true } } }],
    count: 3,
  } satisfies Blueprint);
  assert.deepEqual(templatePaths(bp), ['haproxy-cloud-config.yml']);
});

test("the original README's example parses (True, quoted strings, block style)", () => {
  const bp = parseBlueprint(ORIGINAL_README, 'bp.yml');
  assert.equal(bp.instance.publicIp, true);
  assert.equal(bp.image.name, 'ubuntu-xenial-16-04-*');
  assert.equal(bp.count, undefined);
});

test('defaults: what the original required or defaulted, filled in', () => {
  assert.deepEqual(parseBlueprint(MINIMAL, 'bp.yml'), {
    network: { subnetworkMaxInstanceCount: 256 },
    placement: { availabilityZones: 1 },
    instance: { publicIp: false, memoryBytes: GiB, cpus: 1, gpu: false, rootDiskBytes: undefined, dataDisks: [] },
    image: { name: 'tiny' },
    initialization: [],
    count: undefined,
  } satisfies Blueprint);
  // Empty sections read as absent; an optional variable needs no spec; a default is kept.
  const bp = parseBlueprint(`network:\nplacement: {}\n${MINIMAL}initialization:\n  - path: a.sh\n    vars: { A:, B: { default: [x, 1] }, C: { required: false } }\n`, 'bp.yml');
  assert.equal(bp.network.subnetworkMaxInstanceCount, 256);
  assert.deepEqual(bp.initialization[0]!.vars, { A: { required: false }, B: { required: false, default: ['x', 1] }, C: { required: false } });
});

test('disks: the first is the root disk, the others data disks', () => {
  const bp = parseBlueprint(`instance:\n  memory: 512M\n  cpus: 2\n  disks:\n    - size: 10GiB\n    - size: 1 GiB\n      device_name: /dev/vdb\n    - { size: 2G, type: standard }\nimage: { name: tiny }\n`, 'bp.yml');
  assert.equal(bp.instance.rootDiskBytes, 10 * GiB);
  assert.deepEqual(bp.instance.dataDisks, [{ sizeBytes: GiB, deviceName: '/dev/vdb' }, { sizeBytes: 2 * GiB }]);
});

test('malformed YAML: yaml\'s own message at its line and column', () => {
  const [line, col, path, detail] = problem('instance:\n  memory: [1G\nimage: { name: tiny }\n');
  assert.deepEqual([line, col, path], [3, 1, '']); // where the unclosed list meets a less indented line
  assert.equal(detail, 'Flow sequence in block collection must be sufficiently indented and end with a ]');
  // An unresolved tag is refused, not read as text.
  assert.deepEqual(problem('instance: { memory: !!python/object 1G, cpus: 1 }\nimage: { name: tiny }\n'), [1, 21, '', 'Unresolved tag: tag:yaml.org,2002:python/object']);
  // A duplicate key is malformed too.
  assert.deepEqual(problem(`${MINIMAL}image: { name: other }\n`).slice(0, 3), [3, 1, '']);
});

test('unknown keys are refused at the key, top level and nested', () => {
  assert.deepEqual(problem(`${MINIMAL}replicas: 3\n`), [3, 1, 'replicas', 'unknown key (known: network, placement, instance, image, initialization, count)']);
  assert.deepEqual(problem('instance: { memory: 1G, cpus: 1, gpus: false }\nimage: { name: tiny }\n'), [1, 34, 'instance.gpus', 'unknown key (known: public_ip, memory, cpus, gpu, disks, idle_stop)']);
  assert.deepEqual(problem(`${MINIMAL}initialization:\n  - path: a.sh\n    var: {}\n`), [5, 5, 'initialization[0].var', 'unknown key (known: path, vars)']);
  assert.deepEqual(problem(`${MINIMAL}initialization:\n  - path: a.sh\n    vars: { X: { requird: true } }\n`), [5, 18, 'initialization[0].vars.X.requird', 'unknown key (known: required, default)']);
});

test('wrong types are refused at the value, naming what was found', () => {
  assert.deepEqual(problem('instance: { memory: 1G, cpus: "2" }\nimage: { name: tiny }\n'), [1, 31, 'instance.cpus', 'must be a whole number from 1 to 64 (got "2")']);
  assert.deepEqual(problem('instance: { memory: 1G, cpus: 0.5 }\nimage: { name: tiny }\n'), [1, 31, 'instance.cpus', 'must be a whole number from 1 to 64 (got 0.5)']);
  assert.deepEqual(problem('instance: { memory: 1G, cpus: 1, public_ip: yes }\nimage: { name: tiny }\n'), [1, 45, 'instance.public_ip', 'must be true or false (got "yes")']);
  assert.deepEqual(problem('instance: [1G, 1]\nimage: { name: tiny }\n'), [1, 11, 'instance', 'must be a map with keys public_ip, memory, cpus, gpu, disks, idle_stop (got a list)']);
  assert.deepEqual(problem(`${MINIMAL}initialization: { path: a.sh }\n`), [3, 17, 'initialization', 'must be a list (got a map)']);
  assert.deepEqual(problem(`${MINIMAL}count: many\n`), [3, 8, 'count', 'must be a whole number from 1 to 10000 (got "many")']);
  assert.deepEqual(problem(`network: { subnetwork_max_instance_count: 0 }\n${MINIMAL}`), [1, 43, 'network.subnetwork_max_instance_count', 'must be a whole number from 1 to 65536 (got 0)']);
  assert.deepEqual(problem(`placement: { availability_zones: -1 }\n${MINIMAL}`), [1, 34, 'placement.availability_zones', 'must be a whole number from 1 to 64 (got -1)']);
  assert.deepEqual(problem('instance: { memory: 1G, cpus: 1 }\nimage: { name: 7 }\n'), [2, 16, 'image.name', 'must be a non-empty string (got 7)']);
  assert.deepEqual(problem('- instance\n'), [1, 1, '', 'must be a map with keys network, placement, instance, image, initialization, count (got a list)']);
});

test('count may not exceed the address block the service asks for', () => {
  assert.deepEqual(problem(`${MINIMAL}count: 300\n`), [3, 8, 'count', "300 is more than network.subnetwork_max_instance_count (256, its default): the service's address block would not hold them"]);
  assert.deepEqual(problem(`network: { subnetwork_max_instance_count: 2 }\n${MINIMAL}count: 3\n`), [4, 8, 'count', "3 is more than network.subnetwork_max_instance_count (2): the service's address block would not hold them"]);
  assert.equal(parseBlueprint(`network: { subnetwork_max_instance_count: 3 }\n${MINIMAL}count: 3\n`, 'bp.yml').count, 3);
});

test('missing required keys are said at the parent', () => {
  assert.deepEqual(problem('image: { name: tiny }\n'), [1, 1, 'instance', 'missing (e.g. instance: { memory: 1G, cpus: 1 })']);
  assert.deepEqual(problem('image: { name: tiny }\ninstance:\n  cpus: 1\n'), [3, 3, 'instance.memory', 'missing (e.g. memory: 4GB)']);
  assert.deepEqual(problem('instance: { memory: 1G, cpus: 1 }\nimage: {}\n'), [2, 8, 'image.name', 'missing (e.g. name: debian-12-*)']);
  assert.deepEqual(problem(`${MINIMAL}initialization:\n  - vars: {}\n`), [4, 5, 'initialization[0].path', 'missing (e.g. path: cloud-config.yml)']);
});

test('sizes: "lots" is not a size; a size must be whole MiB', () => {
  assert.deepEqual(problem('instance:\n  memory: lots\n  cpus: 1\nimage: { name: tiny }\n'), [2, 11, 'instance.memory', '"lots" is not a size (e.g. 4GB or 4G)']);
  // A bare number has no unit: refused, not guessed.
  assert.deepEqual(problem('instance:\n  memory: 4096\n  cpus: 1\nimage: { name: tiny }\n'), [2, 11, 'instance.memory', '4096 is not a size (e.g. 4GB or 4G)']);
  assert.deepEqual(problem('instance:\n  memory: 1.3G\n  cpus: 1\nimage: { name: tiny }\n'), [2, 11, 'instance.memory', '"1.3G" must be more than 0 and a whole number of MiB']);
  assert.deepEqual(problem('instance:\n  memory: 1G\n  cpus: 1\n  disks: [ { size: 0G } ]\nimage: { name: tiny }\n'), [4, 20, 'instance.disks[0].size', '"0G" must be more than 0 and a whole number of MiB']);
});

test('sizes round-trip: the original\'s units and Butter\'s give the same binary bytes', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 1024 }), fc.constantFrom(['M', MiB], ['G', GiB]), fc.constantFrom('', 'B', 'iB', ' iB', ' B'), (n, [u, mult], suffix) => {
      const text = suffix.startsWith(' ') ? `${n} ${u}${suffix.slice(1)}` : `${n}${u}${suffix}`;
      const bp = parseBlueprint(`instance: { memory: "${text}", cpus: 1 }\nimage: { name: tiny }\n`, 'bp.yml');
      assert.equal(bp.instance.memoryBytes, n * mult);
    }),
  );
});

test('gpu: true and disk types other than standard are refused, naming the key', () => {
  assert.deepEqual(problem('instance: { memory: 1G, cpus: 1, gpu: true }\nimage: { name: tiny }\n'), [1, 39, 'instance.gpu', 'GPU passthrough is not supported yet (say gpu: false, or leave it out)']);
  assert.deepEqual(problem('instance:\n  memory: 1G\n  cpus: 1\n  disks:\n    - size: 8GB\n      type: ssd\nimage: { name: tiny }\n'), [6, 13, 'instance.disks[0].type', '"ssd": only standard disks exist']);
});

test('template paths stay inside the blueprint\'s directory; variable names are usable and not built-ins', () => {
  const init = (s: string) => problem(`${MINIMAL}initialization:\n  - ${s}\n`);
  assert.deepEqual(init('path: /etc/shadow'), [4, 11, 'initialization[0].path', '"/etc/shadow" must be relative to the blueprint\'s directory']);
  assert.deepEqual(init('path: a/../../x.sh'), [4, 11, 'initialization[0].path', '"a/../../x.sh" leaves the blueprint\'s directory']);
  assert.deepEqual(parseBlueprint(`${MINIMAL}initialization:\n  - path: ./a/../b/c.sh\n`, 'bp.yml').initialization[0]!.path, './a/../b/c.sh');
  assert.deepEqual(init('{ path: a.sh, vars: { 1x: {} } }'), [4, 27, 'initialization[0].vars.1x', 'is not a variable name (letters, digits and _, not starting with a digit)']);
  assert.deepEqual(init('{ path: a.sh, vars: { constructor: {} } }'), [4, 27, 'initialization[0].vars.constructor', 'is not a variable name (letters, digits and _, not starting with a digit)']);
  assert.deepEqual(init('{ path: a.sh, vars: { dns_name: {} } }'), [4, 27, 'initialization[0].vars.dns_name', 'is a built-in variable (service, network, index, dns_name, instance_name): choose another name']);
  assert.deepEqual(init('{ path: a.sh, vars: { range: {} } }'), [4, 27, 'initialization[0].vars.range', 'is a template function (range, cycler, joiner): choose another name']);
});

test('image names: a name or a glob of one', () => {
  assert.equal(parseBlueprint('instance: { memory: 1G, cpus: 1 }\nimage: { name: "debian-12-*" }\n', 'bp.yml').image.name, 'debian-12-*');
  assert.deepEqual(problem('instance: { memory: 1G, cpus: 1 }\nimage: { name: "ubuntu/images/x" }\n'), [2, 16, 'image.name', '"ubuntu/images/x" is not an image name or a glob of one (lowercase letters, digits, "-", and * ? [...]; e.g. tiny or debian-12-*)']);
});

test('every problem is reported, in the file\'s order, one per line', () => {
  try {
    parseBlueprint('extra: 1\ninstance: { memory: lots, cpus: 1, gpu: true }\nimage: { name: tiny }\ncount: 0\n', 'bp.yml');
    assert.fail('parsed');
  } catch (e) {
    assert.ok(e instanceof BlueprintError);
    assert.deepEqual(e.message.split('\n'), [
      'bp.yml:1:1: extra: unknown key (known: network, placement, instance, image, initialization, count)',
      'bp.yml:2:21: instance.memory: "lots" is not a size (e.g. 4GB or 4G)',
      'bp.yml:2:41: instance.gpu: GPU passthrough is not supported yet (say gpu: false, or leave it out)',
      'bp.yml:4:8: count: must be a whole number from 1 to 10000 (got 0)',
    ]);
    assert.deepEqual([e.line, e.column, e.path], [1, 1, 'extra']);
  }
});

test('aliases are followed', () => {
  const bp = parseBlueprint('instance:\n  memory: 1G\n  cpus: 1\n  disks: [ { size: &s 8G }, { size: *s } ]\nimage: { name: tiny }\n', 'bp.yml');
  assert.deepEqual([bp.instance.rootDiskBytes, bp.instance.dataDisks], [8 * GiB, [{ sizeBytes: 8 * GiB }]]);
});

test('instance.idle_stop: scale to zero, a duration like 30s, 10m or 2h; anything else refused at the value', () => {
  const bp = parseBlueprint('instance: { memory: 1G, cpus: 1, idle_stop: 10m }\nimage: { name: tiny }\n', 'b.yaml');
  assert.equal(bp.instance.idleStop, '10m');
  assert.equal(parseBlueprint(MINIMAL, 'b.yaml').instance.idleStop, undefined);
  assert.deepEqual(problem('instance: { memory: 1G, cpus: 1, idle_stop: soon }\nimage: { name: tiny }\n'), [1, 45, 'instance.idle_stop', 'must be a duration like 30s, 10m or 2h, from 5s to 168h (got "soon")']);
  assert.deepEqual(problem('instance: { memory: 1G, cpus: 1, idle_stop: 1s }\nimage: { name: tiny }\n'), [1, 45, 'instance.idle_stop', 'must be a duration like 30s, 10m or 2h, from 5s to 168h (got "1s")']);
});
