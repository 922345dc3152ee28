import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatSize, parseBlueprintSize, parseSize } from './units.ts';

test('parseSize understands binary units and refuses bare numbers', () => {
  assert.equal(parseSize('512M'), 512 * 1024 ** 2);
  assert.equal(parseSize('1G'), 1024 ** 3);
  assert.equal(parseSize('1.5G'), 1.5 * 1024 ** 3);
  assert.equal(parseSize('10GiB'), 10 * 1024 ** 3);
  assert.equal(parseSize('2t'), 2 * 1024 ** 4);
  assert.equal(parseSize('1024'), undefined);
  assert.equal(parseSize('1X'), undefined);
  assert.equal(parseSize(''), undefined);
});

test('formatSize round-trips whole units', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4096 }), fc.constantFrom('K', 'M', 'G'), (n, u) => {
      const bytes = parseSize(`${n}${u}`)!;
      assert.equal(parseSize(formatSize(bytes)), bytes);
    }),
  );
});

test('parseBlueprintSize also takes a blank before the unit, as the original blueprints did', () => {
  assert.equal(parseBlueprintSize('8 GiB'), 8 * 1024 ** 3);
  assert.equal(parseBlueprintSize('4GB'), 4 * 1024 ** 3);
  assert.equal(parseBlueprintSize('512 M'), 512 * 1024 ** 2);
  assert.equal(parseBlueprintSize('lots'), undefined);
  assert.equal(parseBlueprintSize('8 G B'), undefined);
  fc.assert(fc.property(fc.integer({ min: 1, max: 4096 }), fc.constantFrom('K', 'M', 'G', 'T'), fc.constantFrom('', ' ', '  '), (n, u, gap) => {
    assert.equal(parseBlueprintSize(`${n}${gap}${u}iB`), parseSize(`${n}${u}`));
  }));
});
