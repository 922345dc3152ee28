/** `butter image ...`: content-addressed images (disk or kernel). */
import { createReadStream, statSync } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import type { Command } from 'commander';
import type { Client } from '../../sdk/client.ts';
import { client, UsageError } from '../config.ts';
import { age, printFields, printJson, printTable, progress, progressDone, size } from '../output.ts';

/** Counts bytes as they pass, for a progress line. */
function meter(label: string, total: number | undefined): Transform {
  let done = 0;
  let last = 0;
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      done += chunk.length;
      if (Date.now() - last > 200) {
        last = Date.now();
        progress(`${label}: ${size(done)}${total ? ` / ${size(total)} (${Math.floor((done / total) * 100)}%)` : ''}`);
      }
      cb(null, chunk);
    },
    flush(cb) {
      progress(`${label}: ${size(done)} done`);
      progressDone();
      cb();
    },
  });
}

async function uploadFile(c: Client, path: string, field: string, sha256?: string): Promise<string> {
  let total: number;
  try {
    total = statSync(path).size;
  } catch (e) {
    throw new UsageError(`${field}: cannot read ${path}: ${(e as Error).message}`);
  }
  const blob = await c.uploadBlob(createReadStream(path).pipe(meter(`uploading ${field}`, total)), sha256);
  return blob.sha256;
}

async function uploadUrl(c: Client, url: string, sha256?: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new UsageError(`url: cannot fetch ${url}: ${(e as Error).message}`);
  }
  if (!res.ok || !res.body) throw new UsageError(`url: ${url} answered ${res.status}`);
  const total = Number(res.headers.get('content-length')) || undefined;
  const body = Readable.fromWeb(res.body as never).pipe(meter('downloading', total));
  return (await c.uploadBlob(body, sha256)).sha256;
}

const HEX = /^[0-9a-f]{64}$/;

/**
 * `--remote`: the control plane downloads the URL itself (POST /v1/images/import); this waits,
 * showing the bytes it has, until the image is ready (or failed: then an error, exit 1).
 */
async function importRemote(c: Client, name: string, url: string, sha256: string) {
  let img = await c.call('importImage', { body: { name, kind: 'disk', url, sha256 } });
  while (img.status === 'importing') {
    const i = img.import;
    if (i) progress(`control plane downloading: ${size(i.bytesDone)}${i.bytesTotal ? ` / ${size(i.bytesTotal)} (${Math.floor((i.bytesDone / i.bytesTotal) * 100)}%)` : ''}`);
    await new Promise((r) => setTimeout(r, 500));
    img = await c.call('getImage', { params: { name } });
  }
  progressDone();
  if (img.status === 'failed') throw new Error(`image ${name}: import failed: ${img.import?.error ?? 'unknown reason'}`);
  return img;
}

export function imageCommands(program: Command): void {
  const image = program.command('image').description('images');

  image
    .command('list')
    .description('list images')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { items } = await client().call('listImages', {});
      if (o.json) return printJson(items);
      printTable(['NAME', 'KIND', 'STATUS', 'FORMAT', 'SIZE', 'SHA256', 'VMS', 'AGE'], items.map((i) => [i.name, i.kind, i.status, i.format ?? i.rootFormat, i.status === 'building' ? '' : size(i.sizeBytes), i.sha256?.slice(0, 12) ?? '', i.vmCount, age(i.createdAt)]));
    });

  image
    .command('add <name>')
    .description('add a disk image (--file or --url) or a kernel image (--kernel + --initrd)')
    .option('--file <path>', 'a qcow2 or raw disk image')
    .option('--url <url>', 'download a disk image')
    .option('--remote', 'with --url: the control plane downloads it (not this machine); needs --sha256')
    .option('--sha256 <hex>', 'refuse the image unless its digest is this')
    .option('--kernel <path>', 'kernel for direct boot')
    .option('--initrd <path>', 'initrd for direct boot')
    .option('--root-disk <path>', 'root disk for a kernel image (each VM gets its own copy-on-write overlay)')
    .option('--cmdline <text>', 'kernel command line')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { file?: string; url?: string; remote?: boolean; sha256?: string; kernel?: string; initrd?: string; rootDisk?: string; cmdline?: string; json?: boolean }) => {
      const sources = [o.file, o.url, o.kernel].filter(Boolean).length;
      if (sources !== 1) throw new UsageError('give exactly one of --file, --url or --kernel');
      if (o.sha256 && !HEX.test(o.sha256)) throw new UsageError('sha256: must be 64 lowercase hex digits');
      if (o.remote && !o.url) throw new UsageError('remote: applies to --url');
      if (o.remote && !o.sha256) throw new UsageError('sha256: --remote needs the digest the image must have');
      const c = client();
      let img;
      if (o.remote) {
        img = await importRemote(c, name, o.url!, o.sha256!);
      } else if (o.kernel) {
        if (!o.initrd) throw new UsageError('initrd: --kernel needs --initrd');
        if (o.sha256) throw new UsageError('sha256: applies to --file and --url; kernel images are checked per file');
        const kernel = await uploadFile(c, o.kernel, 'kernel');
        const initrd = await uploadFile(c, o.initrd, 'initrd');
        const rootDisk = o.rootDisk ? await uploadFile(c, o.rootDisk, 'root-disk') : undefined;
        img = await c.call('createImage', { body: { name, kind: 'kernel', kernel, initrd, ...(rootDisk ? { rootDisk } : {}), ...(o.cmdline ? { cmdline: o.cmdline } : {}) } });
      } else {
        const disk = o.file ? await uploadFile(c, o.file, 'file', o.sha256) : await uploadUrl(c, o.url!, o.sha256);
        img = await c.call('createImage', { body: { name, kind: 'disk', disk } });
      }
      if (o.json) return printJson(img);
      process.stdout.write(`image ${img.name} added (${img.kind}, ${size(img.sizeBytes)}, sha256:${img.sha256})\n`);
    });

  image
    .command('create <name>')
    .description("make a disk image of a VM's root disk at one of its snapshots: its node flattens the snapshot and uploads it")
    .requiredOption('--from-vm <vm>', 'the VM')
    .option('--snapshot <snapshot>', 'a ready snapshot of the VM (default: one taken now, image-NAME)')
    .option('--no-wait', 'return with the image pending')
    .option('--timeout <seconds>', 'how long to wait', '3600')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { fromVm: string; snapshot?: string; wait: boolean; timeout: string; json?: boolean }) => {
      if (!/^\d+$/.test(o.timeout)) throw new UsageError(`timeout: must be a whole number, got ${JSON.stringify(o.timeout)}`);
      const c = client();
      let img = await c.call('createImageFromVm', { body: { name, vm: o.fromVm, ...(o.snapshot !== undefined ? { snapshot: o.snapshot } : {}) } });
      const end = Date.now() + Number(o.timeout) * 1000;
      while (o.wait && img.status === 'pending') {
        progress(`node ${img.export?.node ?? '?'} copying vm ${o.fromVm}'s snapshot ${img.export?.snapshot ?? ''}`);
        if (Date.now() > end) {
          progressDone();
          throw new Error(`image ${name}: still pending after ${o.timeout} s`);
        }
        await new Promise((r) => setTimeout(r, 500));
        img = await c.call('getImage', { params: { name } });
      }
      progressDone();
      if (img.status === 'failed') throw new Error(`image ${name}: failed: ${img.export?.error ?? 'unknown reason'}`);
      if (o.json) return printJson(img);
      process.stdout.write(img.status === 'pending' ? `image ${name} pending (node ${img.export?.node} is copying vm ${o.fromVm}'s snapshot ${img.export?.snapshot})\n` : `image ${img.name} made from vm ${o.fromVm} (${size(img.sizeBytes)}, sha256:${img.sha256})\n`);
    });

  image
    .command('show <name>')
    .description('show an image')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const i = await client().call('getImage', { params: { name } });
      if (o.json) return printJson(i);
      printFields([
        ['name', i.name],
        ['kind', i.kind],
        ['status', i.status],
        ['sha256', i.sha256],
        ['size', size(i.sizeBytes)],
        ['format', i.format ?? i.rootFormat],
        ...Object.entries(i.files).map(([k, f]) => [k, `sha256:${f!.sha256} ${size(f!.sizeBytes)}`] as [string, string]),
        ['cmdline', i.cmdline],
        ...(i.export ? ([['from', `vm ${i.export.vm}, snapshot ${i.export.snapshot} (node ${i.export.node})`], ['error', i.export.error]] as [string, string | null][]) : []),
        ['vms', i.vmCount],
        ...i.warm.map((w) => [`warm on ${w.node}`, warmLine(w)] as [string, string]),
        ['created', i.createdAt],
      ]);
    });

  image
    .command('warm <name>')
    .description("boot the image once on a node and keep its memory state: new VMs of that size there start from it (issue 16)")
    .option('--node <node>', 'the node (default: where a VM of that size would go)')
    .option('--cpus <n>', 'the clones\' CPUs (default 1)')
    .option('--memory <size>', 'the clones\' memory (default 512M)')
    .option('--no-wait', 'answer at once, while it is warming')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { node?: string; cpus?: string; memory?: string; wait: boolean; json?: boolean }) => {
      const cpus = o.cpus === undefined ? undefined : Number(o.cpus);
      if (cpus !== undefined && !(Number.isInteger(cpus) && cpus > 0)) throw new UsageError('cpus: must be a positive whole number');
      const c = client();
      let img = await c.call('warmImage', { params: { name }, body: { ...(o.node ? { node: o.node } : {}), ...(cpus ? { cpus } : {}), ...(o.memory ? { memory: o.memory } : {}) } });
      const node = img.warm.find((w) => w.state === 'warming')?.node;
      // The template boots (under TCG, tens of seconds) and is saved; its guest has 60 s to say it is ready.
      const deadline = Date.now() + 5 * 60_000;
      while (o.wait && node && img.warm.find((w) => w.node === node)?.state === 'warming' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250));
        img = await c.call('getImage', { params: { name } });
      }
      const w = img.warm.find((x) => x.node === node);
      if (o.json) printJson(img);
      else process.stdout.write(`image ${name}: ${w ? `${w.state} on ${w.node}${w.reason ? `: ${w.reason}` : ''}` : 'warm state gone'}\n`);
      if (w?.state === 'failed') process.exitCode = 1;
    });

  image
    .command('unwarm <name>')
    .description('forget the image\'s warm state on a node: new VMs of it there boot cold (the clones made from it run on)')
    .option('--node <node>', 'the node (needed when the image is warm on more than one)')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { node?: string; json?: boolean }) => {
      const c = client();
      let node = o.node;
      if (node === undefined) {
        const on = (await c.call('getImage', { params: { name } })).warm.map((w) => w.node);
        if (on.length === 0) throw new UsageError(`image ${name} is warm on no node`);
        if (on.length > 1) throw new UsageError(`image ${name} is warm on ${on.join(', ')}: say which with --node`);
        node = on[0]!;
      }
      const img = await c.call('unwarmImage', { params: { name, node } });
      if (o.json) printJson(img);
      else process.stdout.write(`image ${name}: no longer warm on ${node}\n`);
    });

  image
    .command('rm <name>')
    .description('remove an image (refused while a VM uses it)')
    .option('--json', 'print JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      await client().call('deleteImage', { params: { name } });
      if (o.json) printJson({ name, deleted: true });
      else process.stdout.write(`image ${name} removed\n`);
    });
}

function warmLine(w: { state: string; reason?: string; cpus: number; memoryMb: number; sizeBytes?: number; readyAt?: string }): string {
  const what = `${w.state}, ${w.cpus} cpu, ${w.memoryMb} MiB`;
  if (w.state === 'failed') return `${what}: ${w.reason ?? 'no reason given'}`;
  return w.sizeBytes !== undefined ? `${what}, ${size(w.sizeBytes)} state${w.readyAt ? `, since ${w.readyAt}` : ''}` : what;
}
