/**
 * Why a call to the control plane failed, as far as retrying goes: no answer at all (try again
 * later), a certificate the pinned CA did not sign (a reinstalled control plane, or someone in
 * between), our token refused (401/403: a deleted node, another control plane, another name),
 * or an answer about the request itself (not the link's business).
 */
import { ButterError } from './client.ts';
import { ControlPlaneUnreachable } from './tls.ts';

/** `answered`: the control plane (or the caller's own machine) said no to this one call; the link is fine. */
export type CallFailure = 'unreachable' | 'untrusted' | 'rejected' | 'answered';

/** OpenSSL's and Node's codes for a certificate chain or name that does not verify. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export function callFailure(e: unknown): CallFailure {
  if (e instanceof ButterError) {
    if (e.status === 401 || e.status === 403) return 'rejected';
    // A proxy or a control plane still starting: not an answer about the request.
    if (e.status === 408 || e.status === 429 || e.status === 502 || e.status === 503 || e.status === 504) return 'unreachable';
    return 'answered';
  }
  if (e instanceof ControlPlaneUnreachable) return 'unreachable';
  const codes = errorCodes(e);
  if (codes.some((c) => UNTRUSTED.has(c))) return 'untrusted';
  // A local errno (a file the caller read, ENOENT, EACCES) is not the link's; the socket's are.
  if (!codes.some((c) => NETWORK_ERRNO.has(c)) && codes.some((c) => /^E[A-Z0-9]+$/.test(c))) return 'answered';
  // Anything else is the transport's: refused, reset, timed out, no route, a stream cut.
  return 'unreachable';
}

const NETWORK_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'EPROTO']);

/**
 * The codes of the error and of its causes: fetch wraps the socket's error in a TypeError, and
 * HTTP/2 in ERR_HTTP2_STREAM_CANCEL (a certificate refused in the handshake is the cause's code).
 */
function errorCodes(e: unknown): string[] {
  const codes: string[] = [];
  for (let x: unknown = e, depth = 0; x && typeof x === 'object' && depth < 4; x = (x as { cause?: unknown }).cause, depth++) {
    const code = (x as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
  }
  return codes;
}

/** A failure's message in one line, with the socket's reason when fetch hid it in `cause`. */
export function describeFailure(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : undefined;
  return (cause && !msg.includes(cause) ? `${msg}: ${cause}` : msg).split('\n')[0]!;
}
