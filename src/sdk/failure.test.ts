import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ButterError } from './client.ts';
import { callFailure, describeFailure } from './failure.ts';
import { ControlPlaneUnreachable } from './tls.ts';

const withCode = (code: string, msg = code) => Object.assign(new Error(msg), { code });

test('refused tokens, untrusted certificates, no answer and plain answers are told apart', () => {
  assert.equal(callFailure(new ButterError(401, 'unauthenticated', 'unknown token')), 'rejected');
  assert.equal(callFailure(new ButterError(403, 'forbidden', 'not your node')), 'rejected');
  assert.equal(callFailure(new ButterError(503, 'internal', 'starting')), 'unreachable');
  assert.equal(callFailure(new ButterError(404, 'not_found', 'no such vm')), 'answered');
  assert.equal(callFailure(new ButterError(500, 'internal', 'a bug')), 'answered');
  assert.equal(callFailure(new ControlPlaneUnreachable('cannot reach')), 'unreachable');
  assert.equal(callFailure(withCode('ECONNREFUSED')), 'unreachable');
  // fetch hides the socket's error in `cause`.
  assert.equal(callFailure(new TypeError('fetch failed', { cause: withCode('SELF_SIGNED_CERT_IN_CHAIN') })), 'untrusted');
  assert.equal(callFailure(withCode('UNABLE_TO_VERIFY_LEAF_SIGNATURE')), 'untrusted');
  // HTTP/2 cancels the stream; the handshake's refusal is the cause.
  assert.equal(callFailure(Object.assign(new Error('The pending stream has been canceled', { cause: withCode('SELF_SIGNED_CERT_IN_CHAIN') }), { code: 'ERR_HTTP2_STREAM_CANCEL' })), 'untrusted');
  assert.equal(callFailure(Object.assign(new Error('The pending stream has been canceled', { cause: withCode('ECONNREFUSED') }), { code: 'ERR_HTTP2_STREAM_CANCEL' })), 'unreachable');
  // A local file's errno is not the link's.
  assert.equal(callFailure(withCode('ENOENT')), 'answered');
  assert.equal(callFailure(new Error('the control plane closed the stream (code 8)')), 'unreachable');
  assert.equal(describeFailure(new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:1') })), 'fetch failed: connect ECONNREFUSED 127.0.0.1:1');
});
