import { test } from 'node:test';
import assert from 'node:assert/strict';
import { couldNotInspect, detectFormat, imageInfoCommand, judgeImageInfo } from './image-check.ts';

// Real `qemu-img info --output=json -f qcow2` output (qemu-img 7.2, Debian 12), for images made with
// `qemu-img create`, compacted to one line each.
const INFO = {
  clean: '{"virtual-size": 1048576, "filename": "clean.qcow2", "cluster-size": 65536, "format": "qcow2", "actual-size": 200704, "format-specific": {"type": "qcow2", "data": {"compat": "1.1", "compression-type": "zlib", "lazy-refcounts": false, "refcount-bits": 16, "corrupt": false, "extended-l2": false}}, "dirty-flag": false}',
  // -b /etc/hostname -F raw
  backedByRaw: '{"backing-filename-format": "raw", "virtual-size": 1048576, "filename": "evil.qcow2", "cluster-size": 65536, "format": "qcow2", "actual-size": 200704, "format-specific": {"type": "qcow2", "data": {"compat": "1.1", "compression-type": "zlib", "lazy-refcounts": false, "refcount-bits": 16, "corrupt": false, "extended-l2": false}}, "full-backing-filename": "/etc/hostname", "backing-filename": "/etc/hostname", "dirty-flag": false}',
  // -o data_file=/tmp/imgx/x.raw
  dataFile: '{"virtual-size": 1048576, "filename": "evil2.qcow2", "cluster-size": 65536, "format": "qcow2", "actual-size": 200704, "format-specific": {"type": "qcow2", "data": {"compat": "1.1", "compression-type": "zlib", "lazy-refcounts": false, "refcount-bits": 16, "data-file": "/tmp/imgx/x.raw", "data-file-raw": false, "corrupt": false, "extended-l2": false}}, "dirty-flag": false}',
  // -b /tmp/imgx/base.qcow2 -F qcow2
  backedByQcow2: '{"backing-filename-format": "qcow2", "virtual-size": 1048576, "filename": "evil3.qcow2", "cluster-size": 65536, "format": "qcow2", "actual-size": 200704, "format-specific": {"type": "qcow2", "data": {"compat": "1.1", "compression-type": "zlib", "lazy-refcounts": false, "refcount-bits": 16, "corrupt": false, "extended-l2": false}}, "full-backing-filename": "/tmp/imgx/base.qcow2", "backing-filename": "/tmp/imgx/base.qcow2", "dirty-flag": false}',
  // -u -b 'json:{"file.driver":"file","file.filename":"/etc/hostname"}' -F raw
  jsonBacking: '{"backing-filename-format": "raw", "virtual-size": 1048576, "filename": "evil4.qcow2", "cluster-size": 65536, "format": "qcow2", "actual-size": 200704, "format-specific": {"type": "qcow2", "data": {"compat": "1.1", "compression-type": "zlib", "lazy-refcounts": false, "refcount-bits": 16, "corrupt": false, "extended-l2": false}}, "full-backing-filename": "json:{\\"file.driver\\":\\"file\\",\\"file.filename\\":\\"/etc/hostname\\"}", "backing-filename": "json:{\\"file.driver\\":\\"file\\",\\"file.filename\\":\\"/etc/hostname\\"}", "dirty-flag": false}',
  // -f raw on 100,000 random bytes
  raw: '{"virtual-size": 100352, "filename": "rand.raw", "format": "raw", "actual-size": 102400, "dirty-flag": false}',
};
const ok = (stdout: string) => ({ code: 0, stdout, stderr: '' });

test('a self-contained qcow2 or raw image passes, with its virtual size', () => {
  assert.deepEqual(judgeImageInfo(ok(INFO.clean), 'qcow2'), { ok: true, virtualSize: 1048576 });
  assert.deepEqual(judgeImageInfo(ok(INFO.raw), 'raw'), { ok: true, virtualSize: 100352 });
});

test('a backing file of any kind is refused, naming it', () => {
  const reason = (s: string) => {
    const v = judgeImageInfo(ok(s), 'qcow2');
    assert.equal(v.ok, false);
    return v.ok ? '' : v.reason;
  };
  assert.match(reason(INFO.backedByRaw), /^the qcow2 image names a backing file \/etc\/hostname; images must be self-contained/);
  assert.match(reason(INFO.backedByQcow2), /names a backing file \/tmp\/imgx\/base\.qcow2;/);
  assert.match(reason(INFO.jsonBacking), /names a backing file json:\{"file\.driver":"file","file\.filename":"\/etc\/hostname"\};/);
  // Only the short name given (older qemu-img prints no full name when it cannot resolve it).
  const short = JSON.parse(INFO.backedByRaw) as Record<string, unknown>;
  delete short['full-backing-filename'];
  assert.match(reason(JSON.stringify(short)), /names a backing file \/etc\/hostname;/);
});

test('an external data file is refused, naming it', () => {
  const v = judgeImageInfo(ok(INFO.dataFile), 'qcow2');
  assert.deepEqual(v, { ok: false, reason: 'the qcow2 image names an external data file /tmp/imgx/x.raw; images must be self-contained (flatten it with qemu-img convert)' });
});

test('what qemu-img cannot open in the forced format, or reads as another, is refused', () => {
  const notQcow2 = { code: 1, stdout: '', stderr: "qemu-img: Could not open 'rand.raw': Image is not in qcow2 format\n" };
  assert.deepEqual(judgeImageInfo(notQcow2, 'qcow2'), { ok: false, reason: "qemu-img cannot open it as qcow2: Could not open 'rand.raw': Image is not in qcow2 format" });
  // Killed by prlimit's CPU limit: no stderr, a signal's exit code.
  assert.deepEqual(judgeImageInfo({ code: 137, stdout: '', stderr: '' }, 'qcow2'), { ok: false, reason: 'qemu-img cannot open it as qcow2: exit 137' });
  assert.equal(judgeImageInfo(ok('not json'), 'raw').ok, false);
  assert.equal(judgeImageInfo(ok('null'), 'raw').ok, false);
  assert.deepEqual(judgeImageInfo(ok(INFO.clean), 'raw'), { ok: false, reason: 'qemu-img reads it as qcow2, not raw' });
  const corrupt = INFO.clean.replace('"corrupt": false', '"corrupt": true');
  assert.match((judgeImageInfo(ok(corrupt), 'qcow2') as { reason: string }).reason, /marked corrupt/);
});

test('the format is detected from the qcow2 magic only, and always forced on qemu-img', () => {
  assert.equal(detectFormat(Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3])), 'qcow2');
  assert.equal(detectFormat(Buffer.from('# Disk DescriptorFile\n')), 'raw');
  assert.equal(detectFormat(Buffer.from('QFI')), 'raw');
  const c = imageInfoCommand('/data/blobs/sha256/ab', 'raw');
  assert.equal([c.cmd, ...c.args].join(' '), 'prlimit --as=1073741824 --cpu=30 -- qemu-img info --force-share --output=json -f raw /data/blobs/sha256/ab');
});

test('no verdict only when the check could not run or was killed from outside, not for an exit code that merely looks like it', () => {
  assert.equal(couldNotInspect({ code: 127, stdout: '', stderr: 'prlimit: not found' }), true);
  assert.equal(couldNotInspect({ code: 126, stdout: '', stderr: '' }), true);
  assert.equal(couldNotInspect({ code: 143, stdout: '', stderr: '', signal: 'SIGTERM', timedOut: true }), true);
  assert.equal(couldNotInspect({ code: 137, stdout: '', stderr: '', signal: 'SIGKILL' }), true, 'the OOM killer');
  assert.equal(couldNotInspect({ code: 143, stdout: '', stderr: '' }), false, 'exited 143 by itself: a verdict');
  assert.equal(couldNotInspect({ code: 137, stdout: '', stderr: '' }), false);
  assert.equal(couldNotInspect({ code: 152, stdout: '', stderr: '', signal: 'SIGXCPU' }), false, 'its CPU allowance spent: the image is refused');
});
