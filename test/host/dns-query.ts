/**
 * A tiny DNS client over node:dgram (no dig/host on the test machines, and busybox nslookup
 * hides the response code): one question, the answer's code and records. Run as a script
 * inside a namespace (`ip netns exec NS node --import tsx dns-query.ts …`), it asks from
 * there: `once SERVER NAME TYPE` prints one answer; `loop SERVER NAME` asks for A records
 * again and again until its stdin closes, one JSON line per answer.
 */
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';

export const RCODE_NOERROR = 0;
export const RCODE_NXDOMAIN = 3;
const TYPES = { A: 1, PTR: 12 } as const;
export type QueryType = keyof typeof TYPES;

export interface DnsAnswer {
  rcode: number;
  /** A records as dotted quads, PTR records as names; only records of the asked type. */
  records: string[];
}

export function encodeQuery(id: number, name: string, type: QueryType): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4); // one question
  const labels = name.split('.').filter((l) => l !== '').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')]));
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(TYPES[type], 0);
  tail.writeUInt16BE(1, 2); // IN
  return Buffer.concat([header, ...labels, Buffer.from([0]), tail]);
}

/** A (possibly compressed) name at `at`; returns it and the offset after it in place. */
function readName(buf: Buffer, at: number): { name: string; next: number } {
  const labels: string[] = [];
  let next = -1;
  for (let pos = at, hops = 0; ; ) {
    const len = buf.readUInt8(pos);
    if (len === 0) {
      if (next < 0) next = pos + 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (++hops > 32) throw new Error('DNS name pointer loop');
      if (next < 0) next = pos + 2;
      pos = buf.readUInt16BE(pos) & 0x3fff;
      continue;
    }
    labels.push(buf.toString('ascii', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  return { name: labels.join('.'), next };
}

export function parseAnswer(buf: Buffer, id: number, type: QueryType): DnsAnswer {
  if (buf.readUInt16BE(0) !== id) throw new Error('DNS answer to another question');
  const rcode = buf.readUInt16BE(2) & 0x0f;
  const qd = buf.readUInt16BE(4);
  const an = buf.readUInt16BE(6);
  let pos = 12;
  for (let i = 0; i < qd; i++) pos = readName(buf, pos).next + 4;
  const records: string[] = [];
  for (let i = 0; i < an; i++) {
    pos = readName(buf, pos).next;
    const rtype = buf.readUInt16BE(pos);
    const rdlen = buf.readUInt16BE(pos + 8);
    const rdata = pos + 10;
    if (rtype === TYPES[type]) records.push(type === 'A' ? [...buf.subarray(rdata, rdata + 4)].join('.') : readName(buf, rdata).name);
    pos = rdata + rdlen;
  }
  return { rcode, records };
}

/** One question to `server` port 53; rejects after `timeoutMs` without an answer. */
export function query(server: string, name: string, type: QueryType, timeoutMs = 3000): Promise<DnsAnswer> {
  const id = randomBytes(2).readUInt16BE(0);
  const sock = createSocket('udp4');
  return new Promise<DnsAnswer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no DNS answer for ${name} from ${server} in ${timeoutMs} ms`)), timeoutMs);
    sock.on('error', reject);
    sock.on('message', (msg) => {
      try {
        resolve(parseAnswer(msg, id, type));
      } catch (e) {
        reject(e);
      } finally {
        clearTimeout(timer);
      }
    });
    sock.send(encodeQuery(id, name, type), 53, server);
  }).finally(() => sock.close());
}

async function main(argv: string[]): Promise<void> {
  const [mode, server, name, type = 'A'] = argv;
  if (!server || !name || !(type in TYPES)) throw new Error('usage: once|loop SERVER NAME [A|PTR]');
  if (mode === 'once') {
    process.stdout.write(JSON.stringify(await query(server, name, type as QueryType)) + '\n');
    return;
  }
  let open = true;
  process.stdin.on('end', () => (open = false)).on('close', () => (open = false));
  process.stdin.resume();
  while (open) {
    const line = await query(server, name, 'A').then(
      (a) => JSON.stringify(a),
      (e: Error) => JSON.stringify({ error: e.message }),
    );
    process.stdout.write(line + '\n');
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
