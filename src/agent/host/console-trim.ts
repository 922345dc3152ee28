/**
 * Bounds a console log that QEMU keeps appending to. QEMU holds the file open with O_APPEND
 * (`logappend=on`) for the VM's life, so it cannot be rotated (QEMU would keep writing to
 * the renamed file) and copy-then-truncate loses whatever QEMU writes between the copy and the
 * truncate. Punching a hole over the shipped prefix (`fallocate --punch-hole`, keeping the
 * file's size) frees those blocks while QEMU appends past them: nothing is lost, and offsets
 * in the file stay the offsets the control plane was sent. The file's apparent size keeps
 * growing (`ls -l`); what it holds on disk (`du`) is the unshipped and the kept tail. Needs a
 * filesystem with hole punching (ext4, xfs, btrfs, tmpfs, zfs); elsewhere the log is not trimmed.
 */
import type { Exec } from './exec.ts';

/** Block-sized: a hole over part of a block only zeroes it. */
export const PUNCH_ALIGN = 4096;

export type ConsoleTrim = (file: string, length: number) => Promise<void>;

/** Frees `file`'s first `length` bytes (rounded down to a block), leaving its size and the rest alone. */
export function punchConsole(exec: Exec): ConsoleTrim {
  return async (file, length) => {
    const n = Math.floor(length / PUNCH_ALIGN) * PUNCH_ALIGN;
    if (n <= 0) return;
    await exec.run('fallocate', ['--punch-hole', '--offset', '0', '--length', String(n), file], { timeoutMs: 10_000 });
  };
}
