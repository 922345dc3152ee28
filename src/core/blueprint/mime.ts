/**
 * Several rendered files as one user-data: a MIME multipart/mixed message, the form
 * cloud-init takes (as its `make-mime` writes it). The boundary is derived from the parts,
 * so the same files always give the same text (a revision's user-data is comparable), and
 * it is checked not to occur in any part.
 */
import { createHash } from 'node:crypto';

export interface Part {
  filename: string;
  text: string;
}

/** cloud-init's "starts with" table (longest first where one prefixes another). */
const TYPES: [string, string][] = [
  ['#cloud-config-archive', 'text/cloud-config-archive'],
  ['#cloud-config', 'text/cloud-config'],
  ['#cloud-boothook', 'text/cloud-boothook'],
  ['#include', 'text/x-include-url'],
  ['#part-handler', 'text/part-handler'],
  ['#!', 'text/x-shellscript'],
];

/** A part's Content-Type, from how its text begins. */
export function contentType(text: string): string {
  return TYPES.find(([prefix]) => text.startsWith(prefix))?.[1] ?? 'text/plain';
}

function boundaryFor(parts: Part[]): string {
  const digest = createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32);
  for (let n = 0; ; n++) {
    const b = `==butter-${digest}${n ? `-${n}` : ''}==`;
    if (!parts.some((p) => p.text.includes(`--${b}`))) return b;
  }
}

function quoted(s: string): string {
  // Header text stays ASCII: a non-ASCII file name is spelled with "_" in its part's name.
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[^\x20-\x7e]/g, '_')}"`;
}

/**
 * ASCII text goes as it is (7bit: readable where user-data is shown); other text as base64
 * UTF-8, as cloud-init's make-mime writes it: cloud-init decodes an 8bit part's payload as
 * Latin-1 bytes read as UTF-8, which garbles every non-ASCII character (we watched Python's
 * email parser do it).
 */
function body(text: string): { charset: string; encoding: string; body: string } {
  if (!/[^\p{ASCII}]/u.test(text)) return { charset: 'us-ascii', encoding: '7bit', body: text };
  const b64 = Buffer.from(text, 'utf8').toString('base64');
  return { charset: 'utf-8', encoding: 'base64', body: b64.replace(/.{76}(?=.)/g, '$&\n') };
}

export function multipart(parts: Part[]): string {
  const b = boundaryFor(parts);
  const out = [`Content-Type: multipart/mixed; boundary="${b}"`, 'MIME-Version: 1.0', ''];
  for (const p of parts) {
    const { charset, encoding, body: text } = body(p.text);
    out.push(
      `--${b}`,
      `Content-Type: ${contentType(p.text)}; charset="${charset}"`,
      'MIME-Version: 1.0',
      `Content-Transfer-Encoding: ${encoding}`,
      `Content-Disposition: attachment; filename=${quoted(p.filename)}`,
      '',
      // The line break before the next delimiter belongs to the delimiter, so the part's text
      // comes back exactly as rendered.
      text,
    );
  }
  out.push(`--${b}--`, '');
  return out.join('\n');
}
