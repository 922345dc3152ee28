/**
 * Inspects an uploaded disk image before anything keeps it: `qemu-img info` in the forced
 * format under resource limits (core/image-check.ts decides), so an image naming a backing or
 * data file (a host file QEMU would open as the guest's disk) is refused with a 400. The
 * control plane runs it through the agent's one `Exec` door: the same runner, no second one.
 */
import { resolve } from 'node:path';
import { ApiError } from '../api/errors.ts';
import { imageInfoCommand, judgeImageInfo, couldNotInspect, type DiskFormat } from '../core/image-check.ts';
import type { Exec } from '../agent/host/exec.ts';

export class ImageInspector {
  constructor(private readonly exec: Exec) {}

  /** Throws `invalid` naming `field` unless `file` is a self-contained image in `format`. */
  async check(file: string, format: DiskFormat, field: string): Promise<void> {
    const c = imageInfoCommand(resolve(file), format);
    const r = await this.exec.run(c.cmd, c.args, { allowFail: true, timeoutMs: 60_000 });
    // The host's fault, not the upload's: a 500 says so, and nothing is kept.
    if (couldNotInspect(r)) throw new Error(`cannot inspect images: ${r.stderr.trim() || `${c.cmd} exited ${r.code}`} (qemu-img and prlimit are needed on the control plane)`);
    const v = judgeImageInfo(r, format);
    if (!v.ok) throw new ApiError('invalid', v.reason, field);
  }
}
