/**
 * Uploads a file as a blob (`POST /v1/blobs`) with progress. fetch() reports no upload
 * progress, so this one call is an XMLHttpRequest: same origin, the session cookie, the CSRF
 * header the session asks of every changing request. Errors are the API's envelope, as a
 * ButterError, like every other call the panel makes.
 */
import { ButterError } from '../../../../src/sdk/client.ts';
import type { ResponseOf } from '../../../../src/api/routes.ts';

export interface UploadOptions {
  /** The control plane's base URL ('' for the page's own origin). */
  baseUrl?: string;
  csrf?: string;
  /** Refused by the server unless the bytes have this digest. */
  sha256?: string;
  onProgress?: (loaded: number, total: number) => void;
  signal?: AbortSignal;
}

export function uploadBlob(file: Blob, o: UploadOptions = {}): Promise<ResponseOf<'uploadBlob'>> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `${o.baseUrl ?? ''}/v1/blobs${o.sha256 ? `?sha256=${o.sha256}` : ''}`);
    xhr.withCredentials = true;
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    if (o.csrf) xhr.setRequestHeader('x-csrf-token', o.csrf);
    xhr.upload.onprogress = (e) => o.onProgress?.(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      let body: unknown;
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : {};
      } catch {
        return reject(new ButterError(xhr.status, 'invalid', `unexpected reply (${xhr.status}): ${xhr.responseText.slice(0, 200)}`));
      }
      if (xhr.status >= 200 && xhr.status < 300) return resolve(body as ResponseOf<'uploadBlob'>);
      const e = (body as { error?: { code?: string; message?: string; field?: string } }).error;
      reject(new ButterError(xhr.status, e?.code ?? 'internal', e?.message ?? `HTTP ${xhr.status}`, e?.field));
    };
    xhr.onerror = () => reject(new ButterError(0, 'unavailable', 'the upload failed: no answer from the control plane'));
    xhr.onabort = () => reject(new DOMException('upload cancelled', 'AbortError'));
    o.signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(file);
  });
}
