/**
 * The backing file named in a qcow2 header (pure: the caller reads the bytes). A node reads it
 * to know what still stands on a snapshot's file before it deletes one: cheaper than one
 * `qemu-img info` per file, and the header is the truth QEMU itself follows.
 *
 * Layout (qcow2 spec, big-endian): magic `QFI\xfb` at 0, backing_file_offset u64 at 8,
 * backing_file_size u32 at 16; the name is that many bytes at that offset.
 */
export const QCOW2_MAGIC = 0x514649fb;
/** Enough for the header fields above. */
export const QCOW2_HEADER_BYTES = 20;

/** Where the name is, or null when the image has no backing file; throws on a non-qcow2 buffer. */
export function backingRange(header: Buffer): { offset: number; length: number } | null {
  if (header.length < QCOW2_HEADER_BYTES || header.readUInt32BE(0) !== QCOW2_MAGIC) throw new Error('not a qcow2 image');
  const offset = Number(header.readBigUInt64BE(8));
  const length = header.readUInt32BE(16);
  if (offset === 0 || length === 0) return null;
  // The spec caps the name at 1023 bytes.
  if (length > 1023) throw new Error(`qcow2 backing file name of ${length} bytes`);
  return { offset, length };
}
