import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMetricsListen } from './agent-metrics.ts';

test('--metrics-listen: loopback and the mesh address by default, never an address on the LAN', () => {
  assert.deepEqual(parseMetricsListen([], true), [{ host: '127.0.0.1', port: 7702 }, { mesh: true, port: 7702 }]);
  assert.deepEqual(parseMetricsListen([], false), [{ host: '127.0.0.1', port: 7702 }]);
  assert.deepEqual(parseMetricsListen(['none'], true), []);
  assert.deepEqual(parseMetricsListen(['10.0.0.5:9100', 'mesh:9101', '[::1]'], true), [{ host: '10.0.0.5', port: 9100 }, { mesh: true, port: 9101 }, { host: '::1', port: 7702 }]);
  assert.throws(() => parseMetricsListen(['mesh'], false), /needs the mesh/);
  assert.throws(() => parseMetricsListen(['none', '127.0.0.1:1'], true), /cannot be combined/);
  assert.throws(() => parseMetricsListen(['mesh:99999'], true), /out of range/);
});
