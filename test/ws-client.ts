/**
 * The `ws` package (a dependency of @fastify/websocket) as a test client, typed here by the
 * little the tests use (it ships no types, and adding @types/ws is not worth a dependency).
 */
import { createRequire } from 'node:module';

export interface WsClient {
  send(data: string | Buffer): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: 'open', fn: () => void): this;
  on(event: 'message', fn: (data: Buffer, isBinary: boolean) => void): this;
  on(event: 'close', fn: (code: number, reason: Buffer) => void): this;
  on(event: 'error', fn: (err: Error) => void): this;
  on(event: 'unexpected-response', fn: (req: unknown, res: { statusCode: number; on(e: 'data', f: (c: Buffer) => void): void; on(e: 'end', f: () => void): void }) => void): this;
}

type WsConstructor = new (url: string, opts?: { headers?: Record<string, string>; ca?: string; origin?: string }) => WsClient;
export const WebSocket = createRequire(import.meta.url)('ws') as WsConstructor;

/** A socket that opened, with everything it received and how it closed. */
export interface OpenSocket {
  ws: WsClient;
  /** Binary frames' bytes, concatenated as text. */
  output(): string;
  /** Text frames. */
  texts: string[];
  closed: Promise<{ code: number; reason: string }>;
}

/** Opens `url`; resolves once open, or rejects with the HTTP status (and body) of a refusal. */
export function openSocket(url: string, opts: { headers?: Record<string, string>; ca?: string; origin?: string } = {}): Promise<OpenSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts);
    const chunks: Buffer[] = [];
    const texts: string[] = [];
    let closedResolve!: (v: { code: number; reason: string }) => void;
    const closed = new Promise<{ code: number; reason: string }>((r) => (closedResolve = r));
    ws.on('message', (data, isBinary) => (isBinary ? chunks.push(data) : texts.push(data.toString())));
    ws.on('close', (code, reason) => closedResolve({ code, reason: reason.toString() }));
    ws.on('open', () => resolve({ ws, output: () => Buffer.concat(chunks).toString(), texts, closed }));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c) => (body += c.toString()));
      res.on('end', () => reject(Object.assign(new Error(`refused: ${res.statusCode} ${body}`), { status: res.statusCode, body })));
    });
    ws.on('error', (e) => reject(e));
  });
}
