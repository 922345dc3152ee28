/**
 * `POST /v1/images/import`: the control plane downloads a disk image by URL itself, so a
 * browser (the panel) can add one without holding the bytes. The answer (202) is the image
 * `importing`; the download runs in the background with fetch, streamed into the blob store
 * (blobs.ts: hashed as it comes, the digest checked, a qcow2 inspected), then the image is made
 * as an upload's would be (images.ts: inspected in its format). Any failure (another digest, an
 * HTTP error, a redirect, the deadline, the size cap, a disk naming another file) leaves the
 * image `failed` with the reason and no blob behind. Two audit events: at the start and at the end.
 *
 * The state is in memory (`Images.imports`): an import belongs to this process, like a build.
 *
 * Where it may download from: http(s) only, and no host that resolves to a loopback,
 * link-local (the metadata address) or unspecified address (core/import-address.ts), unless
 * `allowLocalHosts` (tests serve the file on 127.0.0.1). Redirects are not followed (one could
 * lead to such an address). The URL's query and credentials are never shown (a signed URL's
 * query is a secret): the image and the events tell its origin and path only.
 */
import { lookup } from 'node:dns/promises';
import { Readable } from 'node:stream';
import { ApiError } from '../api/errors.ts';
import type { Image, ImageImport } from '../api/schemas/image.ts';
import { refusedImportAddress } from '../core/import-address.ts';
import type { BlobFiles } from './blobs.ts';
import { idempotent, type Once } from './idempotency.ts';
import type { Images, Importing } from './images.ts';
import type { Store } from './store/store.ts';

export interface ImageImportOptions {
  /**
   * FOR TESTS ONLY: allow hosts resolving to loopback, link-local or unspecified addresses
   * (tests serve images from 127.0.0.1). Never in production: it opens the metadata address.
   */
  allowLocalHosts?: boolean;
  /** The whole download's deadline (1 h by default). */
  timeoutMs?: number;
  /** The largest image accepted (64 GiB by default). */
  maxBytes?: number;
}

const TIMEOUT_MS = 3600_000;
const MAX_BYTES = 64 * 1024 ** 3;

/** An import's end, with the reason its image shows. */
class ImportFailed extends Error {}

export class ImageImports {
  private readonly running = new Map<string, AbortController>();
  private readonly timeoutMs: number;
  private readonly maxBytes: number;

  constructor(
    private readonly store: Store,
    private readonly images: Images,
    private readonly blobs: BlobFiles,
    private readonly opts: ImageImportOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? TIMEOUT_MS;
    this.maxBytes = opts.maxBytes ?? MAX_BYTES;
  }

  /** Checks the request and starts the download; the image as it is now (`importing`). */
  async start(actor: string, req: ImageImport, once?: Once): Promise<Image> {
    const url = new URL(req.url);
    await this.checkHost(url);
    const shown = shownUrl(url);
    let entry: Importing | undefined;
    const image = this.store.write(actor, idempotent(once, (tx) => {
      if (tx.db.prepare(`SELECT 1 FROM images WHERE name = ?`).get(req.name)) throw new ApiError('conflict', `image ${req.name} already exists`, 'name');
      if (this.images.isBuilding(req.name)) throw new ApiError('conflict', `image ${req.name} is being built`, 'name');
      if (tx.db.prepare(`SELECT 1 FROM exports WHERE image = ?`).get(req.name)) throw new ApiError('conflict', `image ${req.name} is being made from a VM (or failed so: delete it first)`, 'name');
      if (this.images.imports.get(req.name)?.error === null) throw new ApiError('conflict', `image ${req.name} is being imported already`, 'name');
      entry = { since: tx.now, url: shown, bytesDone: 0, bytesTotal: null, error: null };
      tx.event('import', 'image', req.name, `importing image ${req.name} from ${shown} (sha256:${req.sha256.slice(0, 12)})`);
      return importingView(req.name, entry);
    }));
    // Not replayed (a replay throws before): this request started it.
    if (entry) {
      this.images.imports.set(req.name, entry);
      void this.run(actor, req, entry);
    }
    return image;
  }

  /** Stops every download (the control plane is closing); each ends `failed`. */
  close(): void {
    for (const a of this.running.values()) a.abort(new ImportFailed('the control plane stopped'));
  }

  private async checkHost(url: URL): Promise<void> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ApiError('invalid', 'must be an http:// or https:// URL', 'url');
    if (this.opts.allowLocalHosts) return;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    let addresses: { address: string }[];
    try {
      addresses = await lookup(host, { all: true, verbatim: true });
    } catch (e) {
      throw new ApiError('invalid', `cannot resolve ${host}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'url');
    }
    for (const a of addresses) {
      const why = refusedImportAddress(a.address);
      if (why) throw new ApiError('invalid', `${host} resolves to ${a.address}, ${why}: the control plane does not import from there`, 'url');
    }
  }

  private async run(actor: string, req: ImageImport, entry: Importing): Promise<void> {
    const abort = new AbortController();
    this.running.set(req.name, abort);
    const timer = setTimeout(() => abort.abort(new ImportFailed(`timed out after ${Math.round(this.timeoutMs / 1000)} s`)), this.timeoutMs);
    let recorded: string | undefined;
    try {
      let res: Response;
      try {
        res = await fetch(req.url, { redirect: 'manual', signal: abort.signal });
      } catch (e) {
        throw abort.signal.aborted ? abort.signal.reason : new ImportFailed(`cannot download: ${causeOf(e)}`);
      }
      if (res.status >= 300 && res.status < 400) throw new ImportFailed(`the origin answered ${res.status} (a redirect: not followed; give the final URL)`);
      if (!res.ok || !res.body) throw new ImportFailed(`the origin answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
      const length = Number(res.headers.get('content-length'));
      if (Number.isInteger(length) && length > 0) entry.bytesTotal = length;
      if (length > this.maxBytes) throw new ImportFailed(`too big: ${length} bytes (at most ${this.maxBytes})`);
      const max = this.maxBytes;
      const body = res.body;
      const counted = async function* () {
        for await (const chunk of body as AsyncIterable<Uint8Array>) {
          entry.bytesDone += chunk.length;
          if (entry.bytesDone > max) throw new ImportFailed(`too big: more than ${max} bytes`);
          yield chunk;
        }
      };
      let blob: { sha256: string; sizeBytes: number };
      try {
        blob = await this.blobs.put(Readable.from(counted()), req.sha256);
      } catch (e) {
        if (abort.signal.aborted) throw abort.signal.reason;
        throw e;
      }
      this.images.recordBlob(actor, blob.sha256, blob.sizeBytes);
      recorded = blob.sha256;
      await this.images.create(actor, { name: req.name, kind: 'disk', disk: blob.sha256 }, undefined, { importing: true });
      recorded = undefined;
      this.store.write(actor, (tx) => tx.event('import', 'image', req.name, `imported image ${req.name} (${blob.sizeBytes} bytes, sha256:${blob.sha256.slice(0, 12)}): ready`));
    } catch (e) {
      const reason = e instanceof ImportFailed || e instanceof ApiError ? e.message : `internal error: ${causeOf(e)}`;
      if (recorded) this.images.dropUnusedBlob(actor, recorded, reason);
      entry.error = reason;
      // Still ours (not cleared meanwhile): it shows `failed` with the reason.
      if (this.store.db.open) this.store.write(actor, (tx) => tx.event('import', 'image', req.name, `import of image ${req.name} failed: ${reason}`));
    } finally {
      clearTimeout(timer);
      this.running.delete(req.name);
    }
  }
}

/** The URL as shown: origin and path, never credentials or the query (a signed URL's is a secret). */
export function shownUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function importingView(name: string, i: Importing): Image {
  return { name, kind: 'disk', status: 'importing', sha256: null, sizeBytes: 0, format: null, files: {}, rootFormat: null, cmdline: null, vmCount: 0, warm: [], createdAt: i.since, import: { url: i.url, bytesDone: i.bytesDone, bytesTotal: i.bytesTotal, error: i.error } };
}

function causeOf(e: unknown): string {
  const err = e as { message?: string; cause?: { code?: string; message?: string } };
  return err.cause?.code ?? err.cause?.message ?? err.message ?? String(e);
}
