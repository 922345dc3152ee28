import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSse, SseParser } from './sse.ts';

test('formatSse writes event, one data line per line, then id, then a blank line', () => {
  assert.equal(formatSse({ event: 'audit', data: '{"a":1}', id: '7' }), 'event: audit\ndata: {"a":1}\nid: 7\n\n');
  assert.equal(formatSse({ data: 'two\nlines' }), 'data: two\ndata: lines\n\n');
  assert.throws(() => formatSse({ event: 'a\nb', data: '' }), /line break/);
  assert.throws(() => formatSse({ data: '', id: '1\r' }), /line break/);
});

test('what formatSse writes, SseParser reads back, however the text is cut', () => {
  const msgs = [
    { event: 'audit', data: '{"id":1,"message":"ü ∞ 🧈"}', id: '1' },
    { event: 'audit', data: 'a\nb\n\nc' },
    { event: 'gap', data: '{"from":0,"oldest":5}', id: '9' },
  ];
  const text = `: stream open\n\n${msgs.map(formatSse).join(': keepalive\n\n')}`;
  for (let cut = 0; cut <= text.length; cut++) {
    const p = new SseParser();
    const got = [...p.push(text.slice(0, cut)), ...p.push(text.slice(cut))];
    assert.deepEqual(got, msgs, `cut at ${cut}`);
    assert.equal(p.lastEventId, '9');
  }
});

test('SseParser follows the standard: CR, CRLF and LF line ends, no space after the colon, default event, id-only and empty messages', () => {
  const p = new SseParser();
  assert.deepEqual(p.push('data:x\r\nid:3\r\n\r\n'), [{ event: 'message', data: 'x', id: '3' }]);
  assert.deepEqual(p.push('data: y\r'), []);
  assert.deepEqual(p.push('\n\r'), [{ event: 'message', data: 'y' }], 'CRLF split over two chunks is one line end');
  // An id with no data dispatches nothing but is the last event id; so is an event with no data.
  assert.deepEqual(p.push('id: 12\n\nevent: audit\n\n'), []);
  assert.equal(p.lastEventId, '12');
  assert.deepEqual(p.push('retry: 100\nunknown: field\ndata\n\n'), [{ event: 'message', data: '' }], 'a bare `data` is an empty line of data');
  assert.equal(p.lastEventId, '12', 'the id stays');
  // A message not yet ended by its blank line does not move the last event id: a connection
  // cut there must resume before it.
  assert.deepEqual(p.push('event: audit\ndata: z\nid: 13\n'), []);
  assert.equal(p.lastEventId, '12');
  assert.deepEqual(p.push('\n'), [{ event: 'audit', data: 'z', id: '13' }]);
  assert.equal(p.lastEventId, '13');
});
