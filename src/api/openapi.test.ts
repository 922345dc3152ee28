import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { openApiDocument, servedOpenApiDocument } from './openapi.ts';
import type { Route } from './routes.ts';

// A named schema whose default makes `n` optional on the way in and present on the way out.
const Counter = z.object({ n: z.number().int().default(1) }).meta({ id: 'TestCounter' });
const Wrapper = z.object({ counter: Counter }).meta({ id: 'TestWrapper' });
const table: Record<string, Route> = {
  bump: { method: 'POST', path: '/v1/counters', access: 'operator', summary: 'Bump', body: Counter, response: z.array(Wrapper), status: 200 },
};
/** The value at `keys` under `v` (undefined when absent). */
const at = (v: unknown, ...keys: (string | number)[]): unknown => keys.reduce<unknown>((o, k) => (o as Record<string | number, unknown> | undefined)?.[k], v);

test('named schemas become components/schemas and are referenced there, anonymous ones stay inline', () => {
  const doc = openApiDocument(table);
  const op = at(doc, 'paths', '/v1/counters', 'post');
  assert.equal(at(op, 'operationId'), 'bump');
  assert.deepEqual(at(op, 'responses', 200, 'content', 'application/json', 'schema'), { type: 'array', items: { $ref: '#/components/schemas/TestWrapper' } });
  assert.deepEqual(at(doc, 'components', 'schemas', 'TestWrapper', 'properties', 'counter'), { $ref: '#/components/schemas/TestCounter' });
  assert.equal(at(doc, 'components', 'schemas', 'TestWrapper', '$id'), undefined);
  assert.doesNotMatch(JSON.stringify(doc), /\$defs|"\$schema"|"~\d/);
});

test('a schema read differently as request and as response gets an <id>Input component for the request', () => {
  const doc = openApiDocument(table);
  assert.deepEqual(at(doc, 'paths', '/v1/counters', 'post', 'requestBody', 'content', 'application/json', 'schema'), { $ref: '#/components/schemas/TestCounterInput' });
  assert.deepEqual(at(doc, 'components', 'schemas', 'TestCounter', 'required'), ['n']);
  assert.equal(at(doc, 'components', 'schemas', 'TestCounterInput', 'required'), undefined);
  // Only what the table reaches is in the document, plus the error envelope.
  assert.deepEqual(Object.keys(at(doc, 'components', 'schemas') as object), ['Error', 'TestCounter', 'TestCounterInput', 'TestWrapper']);
});

test('the served document is built once, frozen, and equals a fresh build', () => {
  const a = servedOpenApiDocument();
  assert.equal(servedOpenApiDocument(), a, 'built once, not per request');
  assert.equal(Object.isFrozen(a), true);
  assert.equal(Object.isFrozen(a.paths as object), true);
  assert.deepEqual(a, openApiDocument());
});
