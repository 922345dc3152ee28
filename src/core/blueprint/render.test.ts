import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlueprintError, checkRender, parseBlueprint, renderUserData, type Blueprint, type RenderInput } from './index.ts';

const BUILTINS: RenderInput['builtins'] = { service: 'web', network: 'dev', index: 2, dnsName: 'web.dev.internal', instanceName: 'web-2' };

function blueprint(init: string): Blueprint {
  return parseBlueprint(`instance: { memory: 1G, cpus: 1 }\nimage: { name: tiny }\ninitialization:\n${init}`, 'bp.yml');
}

const ONE = blueprint('  - path: lb.yml\n    vars: { PrivateIps: { required: true }, Port: { default: 80 }, Extra: {} }\n');

function render(bp: Blueprint, files: Record<string, string>, vars: Record<string, unknown> = {}): string {
  return renderUserData(bp, { files, vars, builtins: BUILTINS });
}

/** The one BlueprintError a rendering throws: [file, line, column, path, detail]. */
function failure(fn: () => unknown): [string, number | undefined, number | undefined, string, string] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof BlueprintError, String(e));
    return [e.file, e.line, e.column, e.path, e.detail];
  }
  assert.fail('rendered without an error');
}

test('one file: its text as rendered, with list variables, defaults and the built-ins', () => {
  const tpl = '#cloud-config\n# {{ service }} {{ network }} {{ index }} {{ dns_name }} {{ instance_name }}\n{% for ip in PrivateIps %}server {{ ip }}:{{ Port }}\n{% endfor %}{% if Extra is defined %}extra{% endif %}';
  assert.equal(render(ONE, { 'lb.yml': tpl }, { PrivateIps: ['10.0.0.5', '10.0.0.6'] }), '#cloud-config\n# web dev 2 web.dev.internal web-2\nserver 10.0.0.5:80\nserver 10.0.0.6:80\n');
  assert.equal(render(ONE, { 'lb.yml': '{{ Port }} {{ Extra }}' }, { PrivateIps: [], Port: 8080, Extra: { a: 1 }.a }), '8080 1');
  // No HTML escaping: user-data is not HTML.
  assert.equal(render(ONE, { 'lb.yml': '{{ PrivateIps }}' }, { PrivateIps: '<a & "b">' }), '<a & "b">');
});

/** A minimal MIME reader: the boundary from the top header, then each part's headers and body. */
function readMime(text: string): { boundary: string; parts: { headers: Record<string, string>; body: string }[] } {
  const [head, ...rest] = text.split('\n\n');
  const boundary = /^Content-Type: multipart\/mixed; boundary="([^"]+)"$/m.exec(head!)![1]!;
  assert.match(head!, /^MIME-Version: 1\.0$/m);
  const body = rest.join('\n\n');
  assert.ok(body.startsWith(`--${boundary}\n`));
  assert.ok(text.endsWith(`\n--${boundary}--\n`));
  const chunks = body.slice(0, body.lastIndexOf(`\n--${boundary}--`)).split(`--${boundary}\n`).slice(1);
  const parts = chunks.map((c, i, all) => {
    const at = c.indexOf('\n\n');
    const headers = Object.fromEntries(c.slice(0, at).split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
    // The line break before the next delimiter belongs to the delimiter.
    const b = c.slice(at + 2);
    const raw = i < all.length - 1 ? b.slice(0, -1) : b;
    return { headers, body: headers['Content-Transfer-Encoding'] === 'base64' ? Buffer.from(raw, 'base64').toString('utf8') : raw };
  });
  return { boundary, parts };
}

test('several files: a MIME multipart, each part typed by its first line and named', () => {
  const bp = blueprint('  - path: cloud/config.yml\n  - path: setup.sh\n  - path: notes.txt\n    vars: { Who: { required: true } }\n');
  const files = { 'cloud/config.yml': '#cloud-config\nhostname: {{ instance_name }}\n', 'setup.sh': '#!/bin/sh\necho {{ Who }}', 'notes.txt': 'hello {{ Who }}\n' };
  const out = render(bp, files, { Who: 'ünïcode' });
  const { boundary, parts } = readMime(out);
  assert.deepEqual(
    parts.map((p) => [p.headers['Content-Type'], p.headers['Content-Disposition'], p.headers['Content-Transfer-Encoding'], p.body]),
    [
      ['text/cloud-config; charset="us-ascii"', 'attachment; filename="0-config.yml"', '7bit', '#cloud-config\nhostname: web-2\n'],
      ['text/x-shellscript; charset="utf-8"', 'attachment; filename="1-setup.sh"', 'base64', '#!/bin/sh\necho ünïcode'],
      ['text/plain; charset="utf-8"', 'attachment; filename="2-notes.txt"', 'base64', 'hello ünïcode\n'],
    ],
  );
  assert.ok(!Object.values(files).some((t) => t.includes(boundary)));
  // The same input renders the same text (revisions compare equal), another input another boundary.
  assert.equal(render(bp, files, { Who: 'ünïcode' }), out);
  assert.notEqual(readMime(render(bp, files, { Who: 'x' })).boundary, boundary);
});

test('part names keep the blueprint\'s order when sorted, and two files of one name apart', () => {
  const paths = Array.from({ length: 11 }, (_, i) => `d${i}/${i % 2 ? 'b' : 'a'}.sh`);
  const bp = blueprint(paths.map((p) => `  - path: ${p}\n`).join(''));
  const names = readMime(render(bp, Object.fromEntries(paths.map((p) => [p, '#!/bin/sh\n'])))).parts.map((p) => /filename="([^"]+)"/.exec(p.headers['Content-Disposition']!)![1]!);
  assert.deepEqual(names, ['00-a.sh', '01-b.sh', '02-a.sh', '03-b.sh', '04-a.sh', '05-b.sh', '06-a.sh', '07-b.sh', '08-a.sh', '09-b.sh', '10-a.sh']);
  assert.deepEqual([...names].sort(), names);
});

test('a part that contains the would-be boundary gets another one', () => {
  const bp = blueprint('  - path: a.sh\n  - path: b.sh\n    vars: { T: {} }\n');
  const first = readMime(render(bp, { 'a.sh': '#!/bin/sh\n{{ T }}', 'b.sh': 'b' }, { T: 'x' })).boundary;
  // Craft the parts so the first candidate appears in one: the boundary hashes the rendered parts, so iterate to a fixed point.
  let t = `--${first}`;
  for (let i = 0; i < 5; i++) {
    const out = render(bp, { 'a.sh': '#!/bin/sh\n{{ T }}', 'b.sh': 'b' }, { T: t });
    const { boundary, parts } = readMime(out);
    assert.equal(parts[0]!.body, `#!/bin/sh\n${t}`);
    assert.ok(!parts.some((p) => p.body.includes(`--${boundary}`)));
    t = `--${boundary}`;
  }
});

test('a template file not given: named by its key', () => {
  assert.deepEqual(failure(() => render(ONE, {}, { PrivateIps: [] })), ['lb.yml', undefined, undefined, 'initialization[0].path', 'template file not given (not among the files read with the blueprint)']);
});

test('a required variable missing: named, with the file, before anything renders', () => {
  assert.deepEqual(failure(() => render(ONE, { 'lb.yml': 'x' })), ['lb.yml', undefined, undefined, 'initialization[0].vars.PrivateIps', 'required variable PrivateIps is not set (--var PrivateIps=VALUE)']);
  // checkRender says the same.
  assert.deepEqual(failure(() => checkRender(ONE, { files: { 'lb.yml': 'x' }, vars: {}, builtins: { ...BUILTINS, index: 0 } }))[3], 'initialization[0].vars.PrivateIps');
});

test('a variable that no template declares is refused (as the original did)', () => {
  assert.deepEqual(failure(() => render(ONE, { 'lb.yml': 'x' }, { PrivateIps: [], PrivateIP: 'x' })), ['variables', undefined, undefined, 'PrivateIP', 'is not declared in any initialization[].vars of the blueprint (declared: PrivateIps, Port, Extra)']);
});

test('an undefined variable used: its name, line and column', () => {
  assert.deepEqual(failure(() => render(ONE, { 'lb.yml': '#!/bin/sh\necho {{ PrivateIps }}\necho   {{ Nope }}\n' }, { PrivateIps: 'a' })), [
    'lb.yml', 3, 11, '', 'undefined variable Nope (declare it in initialization[].vars and give it, or guard it with {% if Nope is defined %})',
  ]);
  // A declared optional variable without default, used bare, is undefined too.
  assert.deepEqual(failure(() => render(ONE, { 'lb.yml': '{{ Extra }}' }, { PrivateIps: 'a' })).slice(1, 3), [1, 4]);
  assert.deepEqual(failure(() => render(ONE, { 'lb.yml': 'x\n {{ PrivateIps.first }}' }, { PrivateIps: {} })), ['lb.yml', 2, 5, '', 'PrivateIps.first is undefined or null']);
  assert.deepEqual(failure(() => render(ONE, { 'lb.yml': '{{ PrivateIps }}' }, { PrivateIps: null })), ['lb.yml', 1, 4, '', 'variable PrivateIps is null']);
});

test('a template syntax error: line and column from nunjucks', () => {
  assert.deepEqual(failure(() => render(ONE, { 'lb.yml': '#cloud-config\nruncmd:\n{% for ip in PrivateIps %}\n  - {{ ip }\n{% endfor %}' }, { PrivateIps: [] })), ['lb.yml', 4, 11, '', 'expected variable end']);
  assert.deepEqual(failure(() => render(ONE, { 'lb.yml': 'a\n{% for x in %}' }, { PrivateIps: [] })), ['lb.yml', 2, 13, '', 'unexpected token: %}']);
});

test('a template cannot read files: include, import and extends find nothing', () => {
  for (const tpl of ['{% include "/etc/passwd" %}', '{% import "/etc/passwd" as p %}', '{% extends "../../../etc/passwd" %}', '{% include "lb.yml" %}']) {
    const [file, , , , detail] = failure(() => render(ONE, { 'lb.yml': tpl }, { PrivateIps: [] }));
    assert.equal(file, 'lb.yml');
    assert.match(detail, /^template not found: /, tpl);
  }
});

test('a template cannot reach JavaScript: no constructor, no members of functions', () => {
  const attempts = [
    '{{ range.constructor("return 6*7")() }}',
    '{{ cycler.constructor("return 6*7")() }}',
    '{{ "".constructor.constructor("return 6*7")() }}',
    '{{ PrivateIps["constr" ~ "uctor"]["constr" ~ "uctor"]("return 6*7")() }}',
    '{% set k = "__proto__" %}{{ PrivateIps[k].constructor.constructor("return 6*7")() }}',
    '{{ constructor.constructor("return 6*7")() }}',
    '{{ joiner.call }}',
  ];
  for (const tpl of attempts) {
    let out: string | undefined;
    try {
      out = render(ONE, { 'lb.yml': tpl }, { PrivateIps: ['a'] });
    } catch (e) {
      assert.ok(e instanceof BlueprintError, `${tpl}: ${String(e)}`);
      assert.doesNotMatch(e.message, /42/);
      continue;
    }
    assert.fail(`${tpl} rendered ${JSON.stringify(out)}`);
  }
  // Bare names of Object's own properties are not variables.
  assert.equal(render(ONE, { 'lb.yml': '{{ constructor is defined }} {{ toString is defined }} {{ PrivateIps | join(",") }}' }, { PrivateIps: ['a', 'b'] }), 'false false a,b');
});

test('range() is bounded: 10000 numbers in all per file, nested loops included', () => {
  assert.equal(render(ONE, { 'lb.yml': '{% for i in range(3) %}{{ i }}{% endfor %}{% for i in range(1, 7, 2) %}{{ i }}{% endfor %}{{ range(9994) | length }}' }, { PrivateIps: [] }), '0121359994');
  assert.deepEqual(failure(() => render(ONE, { 'lb.yml': '{% for i in range(1000000) %}{% endfor %}' }, { PrivateIps: [] }))[4], 'range() of more than 10000 numbers in all is refused');
  assert.deepEqual(failure(() => render(ONE, { 'lb.yml': '{% for a in range(200) %}{% for b in range(200) %}{% endfor %}{% endfor %}' }, { PrivateIps: [] }))[4], 'range() of more than 10000 numbers in all is refused');
  // The budget is per file: two files may use it all each.
  const two = blueprint('  - path: a.sh\n  - path: b.sh\n');
  const full = '#!/bin/sh\n{{ range(10000) | length }}';
  assert.equal(readMime(render(two, { 'a.sh': full, 'b.sh': full })).parts.map((p) => p.body).join('|'), '#!/bin/sh\n10000|#!/bin/sh\n10000');
});

test('user-data larger than the VM API takes is refused at render', () => {
  const [file, , , path, detail] = failure(() => render(ONE, { 'lb.yml': '{% for i in range(9000) %}{{ PrivateIps }}{% endfor %}' }, { PrivateIps: '12345678' }));
  assert.deepEqual([file, path, detail], ['user-data', 'initialization', 'renders to 72000 bytes for instance 2; user-data may be at most 64K']);
});

test('no initialization: empty user-data', () => {
  assert.equal(render(parseBlueprint('instance: { memory: 1G, cpus: 1 }\nimage: { name: tiny }\n', 'bp.yml'), {}), '');
});
