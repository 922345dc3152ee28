// The OpenAPI document works with standard third-party tools, not only with our own code: a
// maintained validator accepts it (every `$ref` dereferenced), and a client generator turns it
// into TypeScript types that type-check against a small use naming every operation id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileErrors, dereference, validate } from '@readme/openapi-parser';
import openapiTS, { astToString } from 'openapi-typescript';
import ts from 'typescript';
import { routes } from '../src/api/routes.ts';
import { startTestCloud } from './helpers.ts';

const root = new URL('..', import.meta.url).pathname;
const checkedIn = (): Record<string, unknown> => JSON.parse(readFileSync(join(root, 'docs/openapi.json'), 'utf8'));
const operationIds = Object.keys(routes).sort();

/** Validates with @readme/openapi-parser (which follows every `$ref`) and returns the dereferenced copy. */
async function accepted(doc: Record<string, unknown>): Promise<string> {
  // The parser mutates what it is given: hand it copies.
  const result = await validate(structuredClone(doc) as never);
  assert.ok(result.valid, result.valid ? '' : compileErrors(result));
  const deref = await dereference(structuredClone(doc) as never);
  const text = JSON.stringify(deref);
  assert.doesNotMatch(text, /"\$ref"/, 'a $ref survived dereferencing');
  return text;
}

test('docs/openapi.json passes a third-party OpenAPI 3.1 validator, every $ref resolving', async () => {
  const doc = checkedIn();
  await accepted(doc);
  const servers = doc.servers as { url: string }[] | undefined;
  assert.ok(servers?.length, 'the document names a server');
  const ids = Object.values(doc.paths as Record<string, Record<string, { operationId: string }>>).flatMap((p) => Object.values(p).map((op) => op.operationId));
  assert.deepEqual(ids.sort(), operationIds, 'operation ids are the route ids');
});

test('the live /v1/openapi.json passes the same validator', async () => {
  const cloud = await startTestCloud();
  try {
    const live = (await cloud.admin.call('openapi', {})) as Record<string, unknown>;
    await accepted(live);
    assert.deepEqual(live, checkedIn());
  } finally {
    await cloud.close();
  }
});

test('openapi-typescript generates types from it that type-check a use of every operation', async () => {
  const generated = astToString(await openapiTS(checkedIn() as never));
  const dir = mkdtempSync(join(tmpdir(), 'butter-openapi-'));
  try {
    writeFileSync(join(dir, 'api.ts'), generated);
    // Every route id must be an operation of the generated client, and the shared schemas must be
    // usable as components: the VM a `getVm` returns is the `Vm` component.
    writeFileSync(
      join(dir, 'use.ts'),
      [
        `import type { components, operations, paths } from './api.ts';`,
        `export const ids: (keyof operations)[] = ${JSON.stringify(operationIds)};`,
        `type Got = operations['getVm']['responses'][200]['content']['application/json'];`,
        `export const vm = (v: Got): components['schemas']['Vm'] => v;`,
        `export const name = (v: components['schemas']['Vm']): string => v.name;`,
        `export const create = (b: components['schemas']['VmCreate']): NonNullable<operations['createVm']['requestBody']>['content']['application/json'] => b;`,
        `export type HealthPath = paths['/healthz']['get'];`,
        '',
      ].join('\n'),
    );
    const program = ts.createProgram([join(dir, 'use.ts')], {
      strict: true,
      noEmit: true,
      allowImportingTsExtensions: true,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      lib: ['lib.es2022.d.ts'],
      types: [],
      skipLibCheck: true,
    });
    const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    assert.deepEqual(diagnostics, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
