import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient, QmpError } from './qmp.ts';

const dir = mkdtempSync(join(tmpdir(), 'qmp-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A fake QEMU: greets, requires qmp_capabilities first, sends an event before every reply
 * (and splits writes mid-line) to exercise interleaving and buffering.
 */
function fakeQemu(path: string, seen: unknown[]): net.Server {
  return net
    .createServer((c) => {
      c.write('{"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": ["oob"]}}\r\n');
      let buf = '';
      let negotiated = false;
      c.on('data', (d) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const msg = JSON.parse(buf.slice(0, nl)) as { execute: string; arguments?: unknown; id?: unknown };
          buf = buf.slice(nl + 1);
          seen.push(msg);
          const reply = (r: object) => {
            const text = JSON.stringify({ ...r, id: msg.id }) + '\r\n';
            c.write('{"event": "RTC_CHANGE", "data": {"offset": 1}, "timestamp": {"seconds": 1, "microseconds": 2}}\r\n' + text.slice(0, 5));
            setTimeout(() => c.write(text.slice(5)), 5);
          };
          if (msg.execute === 'qmp_capabilities') {
            negotiated = true;
            reply({ return: {} });
          } else if (!negotiated) {
            reply({ error: { class: 'CommandNotFound', desc: 'Expecting capabilities negotiation' } });
          } else if (msg.execute === 'query-status') {
            reply({ return: { running: true, status: 'running' } });
          } else if (msg.execute === 'quit') {
            c.end();
          } else {
            reply({ error: { class: 'CommandNotFound', desc: `The command ${msg.execute} has not been found` } });
          }
        }
      });
    })
    .listen(path);
}

test('negotiates, executes, matches replies across events, raises errors', async () => {
  const path = join(dir, 'qmp.sock');
  const seen: unknown[] = [];
  const server = fakeQemu(path, seen);
  await new Promise((r) => server.once('listening', r));
  try {
    const qmp = await QmpClient.connect(path);
    const events: string[] = [];
    qmp.onEvent = (e) => events.push(e.event);
    assert.deepEqual(await qmp.execute('query-status'), { running: true, status: 'running' });
    await assert.rejects(qmp.execute('nope', { a: 1 }), (e: unknown) => e instanceof QmpError && e.errorClass === 'CommandNotFound');
    assert.deepEqual(events, ['RTC_CHANGE', 'RTC_CHANGE']);
    assert.equal(qmp.events.length, 3); // including the one before the capabilities reply
    // QEMU closes the socket on quit: pending commands reject instead of hanging.
    await assert.rejects(qmp.execute('quit'), /closed/);
    await assert.rejects(qmp.execute('query-status'), /closed/);
    assert.deepEqual(seen, [
      { execute: 'qmp_capabilities', id: 1 },
      { execute: 'query-status', id: 2 },
      { execute: 'nope', arguments: { a: 1 }, id: 3 },
      { execute: 'quit', id: 4 },
    ]);
  } finally {
    server.close();
  }
});

test('connect fails fast when nobody listens or no greeting arrives', async () => {
  await assert.rejects(QmpClient.connect(join(dir, 'missing.sock')), /ENOENT/);
  const path = join(dir, 'silent.sock');
  const server = net.createServer(() => {}).listen(path);
  await new Promise((r) => server.once('listening', r));
  try {
    // The message names the timeout used: the caller's 200 ms, not the 5 s default.
    await assert.rejects(QmpClient.connect(path, 200), /no greeting within 200 ms/);
  } finally {
    server.close();
  }
});
