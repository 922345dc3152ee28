import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VmSpec } from './vm-spec.ts';
import { dataDiskPath, qemuArgs, vmPaths, processMarker } from './qemu-args.ts';

const paths = vmPaths('/var/lib/butter/', 'vm-1');

/** One option per line ("-flag value"), which keeps the golden text readable. */
function render(argv: string[]): string {
  const lines: string[] = [];
  for (const a of argv) {
    if (a.startsWith('-') && !/^-\d/.test(a)) lines.push(a);
    else lines[lines.length - 1] += ` ${a}`;
  }
  return lines.join('\n');
}

test('disk VM on KVM with two nics', () => {
  const spec: VmSpec = {
    id: 'vm-1',
    name: 'web',
    cpus: 2,
    memoryMiB: 2048,
    diskBytes: 10 * 2 ** 30,
    boot: { kind: 'disk', disk: '/images/debian.qcow2', format: 'qcow2' },
    nics: [
      { tap: 'bt-a1', mac: '52:54:00:00:00:01' },
      { tap: 'bt-a2', mac: '52:54:00:00:00:02' },
    ],
    smbiosSerial: 'ds=nocloud-net;s=http://169.254.169.254/',
  };
  assert.equal(
    render(qemuArgs(spec, paths, 'kvm')),
    `-name guest=butter-vm-1,process=butter-vm-1
-M q35,graphics=off
-accel kvm
-cpu host
-smp 2
-m 2048
-nodefaults
-no-user-config
-display none
-daemonize
-no-shutdown
-pidfile /var/lib/butter/vms/vm-1/qemu.pid
-D /var/lib/butter/vms/vm-1/qemu.log
-trace enable=runstate_set
-qmp unix:/var/lib/butter/vms/vm-1/qmp.sock,server=on,wait=off
-chardev socket,id=ser0,path=/var/lib/butter/vms/vm-1/console.sock,server=on,wait=off,logfile=/var/lib/butter/vms/vm-1/console.log,logappend=on
-serial chardev:ser0
-drive file=/var/lib/butter/vms/vm-1/disk.qcow2,format=qcow2,if=virtio,discard=unmap
-device virtio-rng-pci
-netdev tap,id=n0,ifname=bt-a1,script=no,downscript=no
-device virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01
-netdev tap,id=n1,ifname=bt-a2,script=no,downscript=no
-device virtio-net-pci,netdev=n1,mac=52:54:00:00:00:02
-smbios type=1,serial=ds=nocloud-net;s=http://169.254.169.254/`,
  );
});

test('kernel VM on TCG, commas in values doubled, cmdline verbatim', () => {
  const spec: VmSpec = {
    id: 'vm-2',
    name: 'k',
    cpus: 1,
    memoryMiB: 512,
    diskBytes: 1 << 30,
    boot: { kind: 'kernel', kernel: '/boot/vmlinuz', initrd: '/boot/initrd.img', cmdline: 'console=ttyS0 panic=-1 a=b,c' },
    nics: [],
    smbiosSerial: 'ds=nocloud-net;s=http://x/,y',
  };
  const argv = qemuArgs(spec, vmPaths('/s', 'vm-2'), 'tcg');
  assert.equal(
    render(argv),
    `-name guest=butter-vm-2,process=butter-vm-2
-M q35,graphics=off
-accel tcg
-cpu max
-smp 1
-m 512
-nodefaults
-no-user-config
-display none
-daemonize
-no-shutdown
-pidfile /s/vms/vm-2/qemu.pid
-D /s/vms/vm-2/qemu.log
-trace enable=runstate_set
-qmp unix:/s/vms/vm-2/qmp.sock,server=on,wait=off
-chardev socket,id=ser0,path=/s/vms/vm-2/console.sock,server=on,wait=off,logfile=/s/vms/vm-2/console.log,logappend=on
-serial chardev:ser0
-drive file=/s/vms/vm-2/disk.qcow2,format=qcow2,if=virtio,discard=unmap
-device virtio-rng-pci
-kernel /boot/vmlinuz
-initrd /boot/initrd.img
-append console=ttyS0 panic=-1 a=b,c
-smbios type=1,serial=ds=nocloud-net;s=http://x/,,y`,
  );
  // The cmdline is one argv element, not split on spaces.
  assert.ok(argv.includes('console=ttyS0 panic=-1 a=b,c'));
});

test('process marker escapes commas so the id cannot inject options', () => {
  assert.equal(processMarker('a,debug-threads=on'), 'guest=butter-a,,debug-threads=on,process=butter-a,,debug-threads=on');
});

test('data disks: qcow2 virtio drives right after the root disk, in index order (vdb, vdc, ...), opened as the root disk is', () => {
  const spec: VmSpec = {
    id: 'vm-3',
    name: 'db',
    cpus: 1,
    memoryMiB: 512,
    diskBytes: 1 << 30,
    boot: { kind: 'disk', disk: '/images/debian.qcow2', format: 'qcow2' },
    // Out of order on purpose: the argv orders them, so a guest's vdb is always index 1.
    dataDisks: [
      { index: 2, sizeBytes: 2 << 30 },
      { index: 1, sizeBytes: 16 << 20 },
    ],
    nics: [],
    smbiosSerial: 'x',
  };
  const lines = render(qemuArgs(spec, vmPaths('/s', 'vm-3'), 'tcg')).split('\n');
  const drives = lines.filter((l) => l.startsWith('-drive '));
  assert.deepEqual(drives, [
    '-drive file=/s/vms/vm-3/disk.qcow2,format=qcow2,if=virtio,discard=unmap',
    '-drive file=/s/vms/vm-3/data-1.qcow2,format=qcow2,if=virtio,discard=unmap',
    '-drive file=/s/vms/vm-3/data-2.qcow2,format=qcow2,if=virtio,discard=unmap',
  ]);
  // Consecutive, straight after the root drive: nothing else takes a PCI slot between them.
  const root = lines.indexOf(drives[0]!);
  assert.deepEqual(lines.slice(root, root + 3), drives);
  assert.equal(lines[root + 3], '-device virtio-rng-pci');
  assert.equal(dataDiskPath(vmPaths('/s', 'vm-3'), 7), '/s/vms/vm-3/data-7.qcow2');
});

test("warm RAM in a file: the machine's memory is the backend, shared for a template, private for a clone, sized as -m", () => {
  const spec: VmSpec = {
    id: 'vm-4',
    name: 'w',
    cpus: 1,
    memoryMiB: 256,
    diskBytes: 1 << 30,
    boot: { kind: 'kernel', kernel: '/k', initrd: '/i', cmdline: 'butter.warm=1' },
    nics: [],
    smbiosSerial: 'x',
    memoryFile: { path: '/s/warm/a,b/memory.ram', shared: true },
  };
  const lines = (s: VmSpec) => render(qemuArgs(s, vmPaths('/s', 'vm-4'), 'tcg', true)).split('\n');
  const template = lines(spec);
  assert.ok(template.includes('-M q35,graphics=off,memory-backend=ram0'));
  assert.ok(template.includes('-m 256'));
  assert.deepEqual(template.filter((l) => l.startsWith('-object ')), ['-object memory-backend-file,id=ram0,size=256M,mem-path=/s/warm/a,,b/memory.ram,share=on']);
  const clone = lines({ ...spec, memoryFile: { path: '/s/warm/x/memory.ram', shared: false } });
  assert.deepEqual(clone.filter((l) => l.startsWith('-object ')), ['-object memory-backend-file,id=ram0,size=256M,mem-path=/s/warm/x/memory.ram,share=off']);
  // Without one, QEMU's own memory, as before.
  const plain = lines({ ...spec, memoryFile: undefined } as VmSpec);
  assert.ok(plain.includes('-M q35,graphics=off'));
  assert.equal(plain.filter((l) => l.startsWith('-object ')).length, 0);
});
