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

/** `POST /v1/images/import`: the control plane downloads a disk image itself (http or https). */
export const ImageImport = z
  .object({
    name: Name,
    kind: z.literal('disk'),
    url: z
      .string()
      .max(2048)
      .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an http:// or https:// URL')
      .describe('where the control plane downloads the disk from (no redirects followed)'),
    sha256: Sha256.describe('the digest the image must have: anything else is refused and nothing kept'),
  })
  .strict()
  .meta({ id: 'ImageImport' });
export type ImageImport = z.infer<typeof ImageImport>;

/**
 * `POST /v1/images/from-vm`: an image made of a VM's root disk at one of its snapshots (issue
 * 16): the VM's node flattens the snapshot's chain into one self-contained qcow2 and uploads
 * it; the image is `pending` until then, `ready` once the control plane has checked its
 * digest and inspected it, or `failed` with the reason. A VM of a disk image makes a disk
 * image; a VM of a kernel image a kernel image with the same kernel, initrd and command line,
 * the export as its root disk.
 */
export const ImageFromVm = z
  .object({
    name: Name,
    vm: Name.describe('the VM whose root disk it is made of'),
    snapshot: Name.optional().describe('the snapshot of the VM (ready); default: a new one, `image-NAME`, taken now'),
  })
  .strict()
  .meta({ id: 'ImageFromVm' });
export type ImageFromVm = z.infer<typeof ImageFromVm>;

/** Where an image made from a VM comes from (while `pending`) and why it failed (once `failed`). */
export const ImageExportState = z.object({
  vm: Name,
  snapshot: Name,
  node: Name,
  error: z.string().nullable(),
});

/** An import's progress (while `importing`) or its reason (once `failed`). */
export const ImageImportState = z.object({
  url: z.string(),
  bytesDone: z.number().int().nonnegative(),
  /** From the origin's Content-Length; null when it sent none. */
  bytesTotal: z.number().int().nonnegative().nullable(),
  error: z.string().nullable(),
});

/** A warm state of the image on one node (issue 16): clones of that size start from it there. */
export const ImageWarmState = z
  .object({
    node: Name,
    state: z.enum(['warming', 'ready', 'failed']),
    /** Why it failed. */
    reason: z.string().optional(),
    cpus: z.number().int(),
    memoryMb: z.number().int(),
    /** The saved RAM and device state, once ready. */
    sizeBytes: z.number().int().optional(),
    readyAt: Timestamp.optional(),
  })
  .meta({ id: 'ImageWarmState' });
export type ImageWarmState = z.infer<typeof ImageWarmState>;

/** `POST /v1/images/{name}/warm`: boot a template of the image on a node and keep its memory state. */
export const ImageWarm = z
  .object({
    node: Name.optional().describe('the node to warm it on (default: where the scheduler would place a VM of that size)'),
    cpus: z.number().int().min(1).max(64).optional().describe('the clones\' CPUs (default 1)'),
    memory: z.string().max(16).optional().describe('the clones\' memory, e.g. 256M (default 512M, as `vm create`)'),
  })
  .strict()
  .meta({ id: 'ImageWarm' });
export type ImageWarm = z.infer<typeof ImageWarm>;

/** An image's warm state on one node: `DELETE /v1/images/{name}/warm/{node}`. */
export const WarmParams = z.object({ name: Name, node: Name }).strict();

export const Image = z
  .object({
    name: Name,
    kind: z.enum(['disk', 'kernel']),
    /**
     * `building`: being made where the control plane runs (`butter up`'s tiny image); its files are not there yet.
     * `importing`: being downloaded by the control plane (`import` tells how far); `failed`: the import failed (`import.error` says why; delete the image to clear it).
     * `pending`: being made from a VM's snapshot by its node (`export` tells which); `failed` then too, with `export.error`.
     */
    status: z.enum(['ready', 'building', 'importing', 'pending', 'failed']),
    /** Only on an image being made from a VM, or whose making failed (`image create --from-vm`). */
    export: ImageExportState.optional(),
    /** Only on an image being imported, or whose import failed (kept in memory by the control plane: a restart forgets it). */
    import: ImageImportState.optional(),
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
    /** Its warm states, one per node it was warmed on (`image warm`, issue 16). */
    warm: z.array(ImageWarmState),
    createdAt: Timestamp,
  })
  .meta({ id: 'Image' });
export type Image = z.infer<typeof Image>;

export const Blob = z.object({ sha256: Sha256, sizeBytes: z.number().int() }).meta({ id: 'Blob' });
export const BlobParams = z.object({ sha256: Sha256 }).strict();
export const BlobQuery = z.object({ sha256: Sha256.optional() }).strict();

/** A node's upload of an export it was asked for: the digest it computed, which the control plane checks. */
export const ExportUploadQuery = z.object({ sha256: Sha256 }).strict();
export const ExportParams = z.object({ name: Name, id: z.string().regex(/^[a-z0-9]{1,32}$/) }).strict();
export const ExportFailure = z.object({ reason: z.string().min(1).max(1000) }).strict().meta({ id: 'ExportFailure' });
