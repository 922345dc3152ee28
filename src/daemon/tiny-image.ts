/**
 * `butter up` provides the `tiny` image: built here from Debian's kernel and busybox by
 * `images/tiny/build.sh` (these machines reach no image hosts), then added through the API.
 */
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SystemExec } from '../agent/host/exec.ts';
import { ButterError, type Client } from '../sdk/client.ts';

export const TINY = 'tiny';

/** The repository's `images/tiny/build.sh`, from src/daemon or dist/daemon alike. */
export const TINY_BUILD_SCRIPT = fileURLToPath(new URL('../../images/tiny/build.sh', import.meta.url));

/** What a build leaves: paths of the files, and the kernel command line. */
export interface TinyFiles {
  kernel: string;
  initrd: string;
  rootDisk?: string;
  cmdline: string;
}

export type TinyBuild = (outDir: string) => Promise<TinyFiles>;

export async function buildTiny(outDir: string): Promise<TinyFiles & { rootDisk: string }> {
  await new SystemExec().run('bash', [TINY_BUILD_SCRIPT, outDir], { timeoutMs: 600_000 });
  const f = (n: string) => join(outDir, n);
  for (const n of ['vmlinuz', 'initrd.img', 'root.img', 'cmdline.txt']) if (!existsSync(f(n))) throw new Error(`tiny image build made no ${n}`);
  return { kernel: f('vmlinuz'), initrd: f('initrd.img'), rootDisk: f('root.img'), cmdline: readFileSync(f('cmdline.txt'), 'utf8').trim() };
}

/**
 * Adds the tiny image unless an image of that name exists (one still `building` is this
 * build's own placeholder, images.ts). Returns true when it added it.
 */
export async function ensureTinyImage(admin: Client, workDir: string, build: TinyBuild = buildTiny): Promise<boolean> {
  try {
    if ((await admin.call('getImage', { params: { name: TINY } })).status === 'ready') return false;
  } catch (e) {
    if (!(e instanceof ButterError && e.status === 404)) throw e;
  }
  const t = await build(workDir);
  const up = async (p: string) => (await admin.uploadBlob(createReadStream(p))).sha256;
  await admin.call('createImage', {
    body: { name: TINY, kind: 'kernel', kernel: await up(t.kernel), initrd: await up(t.initrd), ...(t.rootDisk ? { rootDisk: await up(t.rootDisk) } : {}), cmdline: t.cmdline },
  });
  return true;
}
