import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { macBytes } from '../../core/scale-to-zero/frames.ts';
import { Activators, type WakeCall } from './activator.ts';
import { RecordingExec } from './exec.ts';

const NIC = { tap: 'bt0123456789ab', bridge: 'bt-lan', mac: '52:54:00:12:34:56', ip: '10.0.0.5' };

function arpRequest(): Buffer {
  const f = Buffer.alloc(42);
  f.fill(0xff, 0, 6);
  macBytes('52:54:00:aa:bb:cc').copy(f, 6);
  f.writeUInt16BE(0x0806, 12);
  f.writeUInt16BE(1, 14);
  f.writeUInt16BE(0x0800, 16);
  f[18] = 6;
  f[19] = 4;
  f.writeUInt16BE(1, 20);
  macBytes('52:54:00:aa:bb:cc').copy(f, 22);
  Buffer.from([10, 0, 0, 9]).copy(f, 28);
  Buffer.from([10, 0, 0, 5]).copy(f, 38);
  return f;
}

function syn(port: number): Buffer {
  const f = Buffer.alloc(54);
  macBytes(NIC.mac).copy(f, 0);
  macBytes('52:54:00:aa:bb:cc').copy(f, 6);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f[23] = 6;
  Buffer.from([10, 0, 0, 9]).copy(f, 26);
  Buffer.from([10, 0, 0, 5]).copy(f, 30);
  f.writeUInt16BE(port, 36);
  f[46] = 0x50;
  f[47] = 0x02;
  return f;
}

test('the activator: socat under start-stop-daemon per tap, ARP answered back into the tap, a SYN wakes once and is kept for re-sending', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'activator-'));
  const exec = new RecordingExec();
  const a = new Activators({ exec, dir });
  const wakes: WakeCall[] = [];
  // Stands in for socat: sends frames from the tap to the agent's port, reads what comes back.
  const tap = createSocket('udp4');
  try {
    await a.hold('vm1', [NIC], (w) => wakes.push(w));
    assert.ok(a.isHolding('vm1'));
    const start = exec.lines().find((l) => l.includes('--start'))!;
    assert.equal(exec.lines()[0], `start-stop-daemon --stop --quiet --oknodo --pidfile ${dir}/${NIC.tap}.pid --exec /usr/bin/socat --retry TERM/2/KILL/2 --remove-pidfile`, 'whatever an earlier agent left on the tap goes first');
    const [, port, from] = /UDP:127\.0\.0\.1:(\d+),bind=127\.0\.0\.1:(\d+)$/.exec(start)!.map(Number);
    assert.equal(start, `start-stop-daemon --start --background --make-pidfile --pidfile ${dir}/${NIC.tap}.pid --exec /usr/bin/socat -- -lf ${dir}/${NIC.tap}.log TUN,tun-type=tap,tun-name=${NIC.tap},iff-no-pi,iff-up UDP:127.0.0.1:${port},bind=127.0.0.1:${from}`);

    // Another local process, from another port: ignored (no wake, no ARP answer, nothing kept).
    const stranger = createSocket('udp4');
    await new Promise<void>((r) => stranger.bind(0, '127.0.0.1', () => r()));
    let answered = false;
    stranger.on('message', () => (answered = true));
    stranger.send(arpRequest(), port!, '127.0.0.1');
    stranger.send(syn(22), port!, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 200));
    stranger.close();
    assert.equal(answered, false, 'no ARP answer to a stranger');
    assert.equal(wakes.length, 0, "a stranger's SYN wakes nothing");

    await new Promise<void>((r) => tap.bind(from, '127.0.0.1', () => r()));
    const reply = new Promise<Buffer>((r) => tap.once('message', (m) => r(m)));
    tap.send(arpRequest(), port!, '127.0.0.1');
    const arp = await reply;
    assert.deepEqual(arp.subarray(6, 12), macBytes(NIC.mac), 'the ARP reply goes back into the tap, from the VM');
    assert.equal(wakes.length, 0, 'ARP does not wake it');

    tap.send(syn(80), port!, '127.0.0.1');
    tap.send(syn(80), port!, '127.0.0.1');
    const end = Date.now() + 5000;
    while (wakes.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(wakes.map((w) => [w.trigger, w.port, w.from]), [['tcp', 80, '10.0.0.9']], 'one wake, for the first SYN');

    exec.calls.length = 0;
    const steps = await a.wake('vm1', async () => {
      assert.ok(!a.isHolding('vm1'), 'the taps are let go before the VM resumes');
      assert.ok(exec.lines().some((l) => l.includes('--stop')), 'socat is ended before the VM resumes');
    });
    assert.equal(steps.frames, 2, 'both SYNs kept and sent again');
    assert.deepEqual(
      exec.lines().filter((l) => l.startsWith('/usr/bin/socat')).map((l) => l.replace(/OPEN:\S+/, 'OPEN:FILE')),
      ['/usr/bin/socat -u OPEN:FILE INTERFACE:bt-lan', '/usr/bin/socat -u OPEN:FILE INTERFACE:bt-lan'],
      'sent again out the network bridge',
    );
    assert.deepEqual(await a.release('vm1'), [], 'nothing left to let go');
  } finally {
    tap.close();
    await a.releaseAll();
    rmSync(dir, { recursive: true, force: true });
  }
});
