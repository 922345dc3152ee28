import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imageMatches, isImageGlob } from './image-glob.ts';

test('image globs: * any run, ? one character, [..] a class, whole name only', () => {
  assert.ok(imageMatches('debian-12-*', 'debian-12-20260101'));
  assert.ok(!imageMatches('debian-12-*', 'debian-13-20260101'));
  assert.ok(!imageMatches('debian-12-*', 'my-debian-12-x'));
  assert.ok(imageMatches('tiny', 'tiny'));
  assert.ok(!imageMatches('tiny', 'tiny2'));
  assert.ok(imageMatches('tiny-?', 'tiny-3'));
  assert.ok(!imageMatches('tiny-?', 'tiny-30'));
  assert.ok(imageMatches('v[0-9]-x', 'v7-x'));
  assert.ok(!imageMatches('v[0-9]-x', 'va-x'));
  assert.ok(!imageMatches('v[9-0]', 'v5'));
  assert.ok(isImageGlob('debian-*') && isImageGlob('a?') && isImageGlob('a[b]') && !isImageGlob('tiny'));
});
