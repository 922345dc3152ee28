/** Images: content-addressed (sha256) blobs bundled under a name. */
import { z } from 'zod';
import { Name, Sha256, Timestamp } from './common.ts';

export const DiskFormat = z.enum(['qcow2', 'raw']);

export const ImageFile = z.object({ sha256: Sha256, sizeBytes: z.number().int().nonnegative() }).strict();

export const ImageCreate = z
  .discriminatedUnion('kind', [
    z.object({ name: Name, kind: z.literal('disk'), disk: Sha256 }).strict(),
    z
      .object({
        name: Name,
        kind: z.literal('kernel'),
        kernel: Sha256,
        initrd: Sha256,
        rootDisk: Sha256.optional(),
        cmdline: z.string().max(1024).optional(),
      })
      .strict(),
  ])
  .meta({ id: 'ImageCreate' });
export type ImageCreate = z.infer<typeof ImageCreate>;

export const Image = z
  .object({
    name: Name,
    kind: z.enum(['disk', 'kernel']),
    /** `building`: being made where the control plane runs (`butter up`'s tiny image); its files are not there yet. */
    status: z.enum(['ready', 'building']),
    /** The image's own digest: of its single disk, or of its manifest for kernel images; null while building. */
    sha256: Sha256.nullable(),
    sizeBytes: z.number().int(),
    format: DiskFormat.nullable(),
    files: z.object({
      disk: ImageFile.optional(),
      kernel: ImageFile.optional(),
      initrd: ImageFile.optional(),
      rootDisk: ImageFile.optional(),
    }),
    rootFormat: DiskFormat.nullable(),
    cmdline: z.string().nullable(),
    vmCount: z.number().int(),
    createdAt: Timestamp,
  })
  .meta({ id: 'Image' });
export type Image = z.infer<typeof Image>;

export const Blob = z.object({ sha256: Sha256, sizeBytes: z.number().int() }).meta({ id: 'Blob' });
export const BlobParams = z.object({ sha256: Sha256 }).strict();
export const BlobQuery = z.object({ sha256: Sha256.optional() }).strict();
