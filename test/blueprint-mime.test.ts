// A service's multi-file user-data, read by the parser cloud-init reads it with (Python's
// `email`, cloudinit/user_data.py): the parts, their types, names and texts come back exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { parseBlueprint, renderUserData } from '../src/core/blueprint/index.ts';
import { requires } from './requires.ts';

const python = spawnSync('python3', ['-c', 'import email'], { encoding: 'utf8' }).status === 0;

const READ = `
import email, json, sys
msg = email.message_from_string(sys.stdin.read())
assert msg.is_multipart(), "not multipart"
parts = [[p.get_content_type(), p.get_filename(), p.get_payload(decode=True).decode("utf-8")] for p in msg.walk() if p.get_content_maintype() != "multipart"]
print(json.dumps(parts))
`;

test('cloud-init\'s parser (Python email) reads the multipart back exactly', { skip: requires(python, 'python3 with the email module is not installed') }, () => {
  const bp = parseBlueprint('instance: { memory: 1G, cpus: 1 }\nimage: { name: tiny }\ninitialization:\n  - path: c.yml\n  - path: s/run.sh\n    vars: { Who: { required: true } }\n  - path: notes\n', 'bp.yml');
  const files = { 'c.yml': '#cloud-config\nhostname: {{ instance_name }}\n', 's/run.sh': '#!/bin/sh\necho "{{ Who }}" --not-a-boundary\n\n', notes: 'ünï {{ index }}' };
  const out = renderUserData(bp, { files, vars: { Who: 'wörld' }, builtins: { service: 'web', network: 'dev', index: 1, dnsName: 'web.dev.internal', instanceName: 'web-1' } });
  const r = spawnSync('python3', ['-c', READ], { input: out, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [
    ['text/cloud-config', '0-c.yml', '#cloud-config\nhostname: web-1\n'],
    ['text/x-shellscript', '1-run.sh', '#!/bin/sh\necho "wörld" --not-a-boundary\n\n'],
    ['text/plain', '2-notes', 'ünï 1'],
  ]);
});
