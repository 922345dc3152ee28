import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from './config.ts';
import { parseVars } from './blueprint-bundle.ts';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'butter-bundle-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('parseVars: --var values are YAML flow lists and maps, plain numbers and flags, else text', () => {
  assert.deepEqual(parseVars(['Ips=[10.0.0.1, 10.0.0.2]', 'Map={a: 1}', 'Port=8080', 'On=true', 'Nothing=null', 'Version=1.10', 'Octal=010', 'Colon=a: b', 'Empty=', 'Quoted="8080"', 'Eq=a=b', 'Sp=hello world']), {
    Ips: ['10.0.0.1', '10.0.0.2'],
    Map: { a: 1 },
    Port: 8080,
    On: true,
    Nothing: null,
    Version: '1.10',
    Octal: '010',
    Colon: 'a: b',
    Empty: '',
    Quoted: '8080',
    Eq: 'a=b',
    Sp: 'hello world',
  });
});

test('parseVars: --var overrides --vars-file; bad input is a usage error naming the option', () => {
  withDir((dir) => {
    writeFileSync(join(dir, 'vars.yml'), 'PrivateIps: [a, b]\nWho: file\n');
    assert.deepEqual(parseVars(['Who=cli'], join(dir, 'vars.yml')), { PrivateIps: ['a', 'b'], Who: 'cli' });
    const usage = (fn: () => unknown, message: string) => assert.throws(fn, (e: unknown) => e instanceof UsageError && e.message === message);
    usage(() => parseVars(['novalue']), 'var: --var "novalue" must be NAME=VALUE');
    usage(() => parseVars(['=x']), 'var: --var "=x" must be NAME=VALUE');
    usage(() => parseVars(['1x=y']), 'var: --var "1x=y": "1x" is not a variable name (letters, digits and _, not starting with a digit)');
    usage(() => parseVars(['Ips=[a, b']), 'var: --var Ips=[a, b: not a YAML value: Flow sequence must end with a ]');
    writeFileSync(join(dir, 'list.yml'), '- a\n- b\n');
    usage(() => parseVars([], join(dir, 'list.yml')), `vars-file: ${join(dir, 'list.yml')} must be a map of variable names to values (got a list)`);
    writeFileSync(join(dir, 'bad.yml'), 'a: [1\nb: 2\n');
    assert.throws(() => parseVars([], join(dir, 'bad.yml')), (e: unknown) => e instanceof UsageError && e.message.startsWith(`vars-file: ${join(dir, 'bad.yml')}:2:1: `));
    usage(() => parseVars([], join(dir, 'none.yml')), `vars-file: cannot read ${join(dir, 'none.yml')}: no such file`);
  });
});
