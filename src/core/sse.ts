/**
 * Server-sent events (the WHATWG HTML "event stream" format), both ways: the control plane
 * formats its messages with `formatSse`, the SDK parses them with `SseParser`. Pure: text in,
 * text or messages out, so it runs in Node and in a browser alike.
 */

export interface SseMessage {
  /** The `event:` field; `message` when none was given, as in a browser's EventSource. */
  event: string;
  data: string;
  /** The `id:` field of this message, if it had one. */
  id?: string;
}

/** One message as text. A field may not hold a line break; `data` may (one `data:` line each). */
export function formatSse(m: { event?: string; data: string; id?: string }): string {
  for (const [k, v] of [['event', m.event], ['id', m.id]] as const) {
    if (v !== undefined && /[\r\n]/.test(v)) throw new Error(`an SSE ${k} field cannot hold a line break`);
  }
  let out = m.event !== undefined ? `event: ${m.event}\n` : '';
  for (const line of m.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  if (m.id !== undefined) out += `id: ${m.id}\n`;
  return out + '\n';
}

/**
 * An incremental parser: feed it text as it arrives (chunks may split anywhere, even between
 * `\r` and `\n`), get the complete messages. Comments (`: …`) and `retry:` are skipped; a
 * message with no data is not dispatched, as the standard says; `lastEventId` is the id of the last
 * complete message that had one, dispatched or not (an id-only message sets it too).
 */
export class SseParser {
  lastEventId = '';
  private buf = '';
  private event = '';
  private data: string[] = [];
  private id: string | undefined;
  /** The last chunk ended with `\r`: a `\n` starting the next one belongs to it. */
  private pendingCr = false;

  push(chunk: string): SseMessage[] {
    if (this.pendingCr && chunk.startsWith('\n')) chunk = chunk.slice(1);
    this.pendingCr = false;
    this.buf += chunk;
    const out: SseMessage[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) break;
      // A lone `\r` at the very end may be the first half of `\r\n`: take it, and drop a `\n` next.
      if (m[0] === '\r' && m.index === this.buf.length - 1) this.pendingCr = true;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      const msg = this.line(line);
      if (msg) out.push(msg);
    }
    return out;
  }

  private line(line: string): SseMessage | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    return undefined;
  }

  private dispatch(): SseMessage | undefined {
    const { event, data, id } = this;
    // At the blank line, not at the `id:` line: a message cut off before its end never moves it.
    if (id !== undefined) this.lastEventId = id;
    this.event = '';
    this.data = [];
    this.id = undefined;
    if (data.length === 0) return undefined;
    return { event: event || 'message', data: data.join('\n'), ...(id !== undefined ? { id } : {}) };
  }
}
