import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuTicks, diskBytes, netDevBytes, rssBytes } from './vm-stats.ts';

test('cpu ticks are utime + stime, counted from the last parenthesis of the command name', () => {
  // A real line of a QEMU process (fields 14, 15 = 1234, 567), and one whose name holds ") (".
  const line = '4242 (qemu-system-x86) S 1 4241 4241 0 -1 4194624 30211 0 3 0 1234 567 0 0 20 0 5 0 123456 1234567890 45678 18446744073709551615 1 1 0 0 0 0 0 4096 16963 0 0 0 17 1 0 0 0 0 0';
  assert.equal(cpuTicks(line), 1801);
  assert.equal(cpuTicks(line.replace('(qemu-system-x86)', '(a) (b c)')), 1801);
  assert.throws(() => cpuTicks('garbage'), /not a \/proc\/PID\/stat/);
});

test('resident memory is VmRSS in KiB, as bytes', () => {
  assert.equal(rssBytes('Name:\tqemu\nVmPeak:\t  999 kB\nVmRSS:\t  204800 kB\nRssAnon:\t 1 kB\n'), 204800 * 1024);
  assert.throws(() => rssBytes('Name:\tzombie\n'), /no VmRSS/);
});

test('disk bytes sum the drives the guest sees, not the layers below them', () => {
  const answer = [
    { device: 'drive0', stats: { rd_bytes: 1000, wr_bytes: 10 }, parent: { stats: { rd_bytes: 999999, wr_bytes: 999999 } } },
    { device: 'drive1', stats: { rd_bytes: 24, wr_bytes: 5 } },
    { device: 'cdrom', stats: {} },
  ];
  assert.deepEqual(diskBytes(answer), { read: 1024, write: 15 });
  assert.throws(() => diskBytes({ error: 'x' }), /did not answer a list/);
});

test("interface byte counters from /proc/net/dev: receive is the first field, transmit the ninth", () => {
  const text = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  123456     100    0    0    0     0          0         0   123456     100    0    0    0     0       0          0
btvm1abc: 5000 40 0 0 0 0 0 0 7000 50 0 0 0 0 0 0
`;
  const dev = netDevBytes(text);
  assert.deepEqual(dev.get('btvm1abc'), { rx: 5000, tx: 7000 });
  assert.deepEqual(dev.get('lo'), { rx: 123456, tx: 123456 });
  assert.equal(dev.size, 2, 'the two header lines are not interfaces');
});
