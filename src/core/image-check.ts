/**
 * Whether a disk image is safe to hand to QEMU (OSSA-2024-001): a qcow2 may name a backing
 * file or an external data file, which QEMU then opens as part of the guest's disk; any host
 * file (/etc/shadow, /dev/sda, another VM's disk) would be the guest's to read. Butter's images
 * are self-contained: such images are refused. Pure: the command to run and the verdict on its
 * output; the control plane and the agent run it through their `Exec`.
 */

export type DiskFormat = 'qcow2' | 'raw';

/** qcow2 files start with "QFI\xfb"; anything else is taken as raw, and opened only as raw. */
export function detectFormat(head: Uint8Array): DiskFormat {
  return head.length >= 4 && head[0] === 0x51 && head[1] === 0x46 && head[2] === 0x49 && head[3] === 0xfb ? 'qcow2' : 'raw';
}

/** Bytes `detectFormat` needs. */
export const FORMAT_HEAD_BYTES = 4;

/**
 * `qemu-img info` with the format FORCED (probing would let a raw upload that looks like a
 * vmdk or qcow2 name host files), under limits as OpenStack runs it: a crafted image can make
 * qemu-img allocate or loop without end. `--force-share`: a base image already open in a
 * running QEMU can still be inspected. qemu-img info does not open backing or data files.
 * `file` must be absolute (a relative name with a colon would read as a protocol).
 */
export function imageInfoCommand(file: string, format: DiskFormat): { cmd: string; args: string[] } {
  return {
    cmd: 'prlimit',
    args: ['--as=1073741824', '--cpu=30', '--', 'qemu-img', 'info', '--force-share', '--output=json', '-f', format, file],
  };
}

export interface InfoResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Set when a signal ended the run (agent/host/exec.ts `ExecResult`). */
  signal?: string;
  timedOut?: boolean;
}

/** The fields of `qemu-img info --output=json` that decide; see image-check.test.ts for real output. */
interface QemuImgInfo {
  format?: unknown;
  'virtual-size'?: unknown;
  'backing-filename'?: unknown;
  'full-backing-filename'?: unknown;
  'format-specific'?: { type?: unknown; data?: { 'data-file'?: unknown; corrupt?: unknown } };
}

/**
 * No verdict on the image: prlimit or qemu-img could not be run (126/127, as a shell reports
 * it), or it was killed from outside: the runner's timeout, or SIGTERM/SIGKILL from the host
 * (the OOM killer, a shutdown). The host's trouble, not the image's; nothing may be deleted or
 * refused for it. The signal is read from the result, not guessed from 137/143, which a
 * program may also exit with. (SIGXCPU, qemu-img spending the 30 s of CPU prlimit allows, is
 * the image's doing and stays a refusal, as in OpenStack.)
 */
export function couldNotInspect(r: InfoResult): boolean {
  return r.code === 126 || r.code === 127 || r.timedOut === true || r.signal === 'SIGTERM' || r.signal === 'SIGKILL';
}

export type ImageVerdict = { ok: true; virtualSize: number } | { ok: false; reason: string };

/** The verdict on one `imageInfoCommand` run: refused unless qemu-img opened it as `format` and it names no other file. */
export function judgeImageInfo(r: InfoResult, format: DiskFormat): ImageVerdict {
  if (r.code !== 0) {
    const why = r.stderr.trim().split('\n')[0]?.replace(/^qemu-img: /, '') || `exit ${r.code}`;
    return { ok: false, reason: `qemu-img cannot open it as ${format}: ${why}` };
  }
  let info: QemuImgInfo;
  try {
    info = JSON.parse(r.stdout) as QemuImgInfo;
  } catch {
    return { ok: false, reason: `qemu-img cannot open it as ${format}: its answer is not JSON` };
  }
  if (typeof info !== 'object' || info === null) return { ok: false, reason: `qemu-img cannot open it as ${format}: no image information` };
  if (info.format !== format) return { ok: false, reason: `qemu-img reads it as ${String(info.format)}, not ${format}` };
  // Any name at all, a path, another qcow2 or a `json:{...}` pseudo-protocol: QEMU would open it.
  const backing = info['full-backing-filename'] ?? info['backing-filename'];
  if (backing !== undefined) return { ok: false, reason: `the ${format} image names a backing file ${String(backing)}; images must be self-contained (flatten it with qemu-img convert)` };
  const data = info['format-specific']?.data;
  if (data?.['data-file'] !== undefined) return { ok: false, reason: `the ${format} image names an external data file ${String(data['data-file'])}; images must be self-contained (flatten it with qemu-img convert)` };
  if (data?.corrupt === true) return { ok: false, reason: `the ${format} image is marked corrupt (qemu-img check -r all repairs it)` };
  const size = info['virtual-size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) return { ok: false, reason: `qemu-img reports no virtual size for it` };
  return { ok: true, virtualSize: size };
}
