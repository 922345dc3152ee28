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
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`).replace(/[\r\n]/g, ' ')}"`;
}

export function multipart(parts: Part[]): string {
  const b = boundaryFor(parts);
  const out = [`Content-Type: multipart/mixed; boundary="${b}"`, 'MIME-Version: 1.0', ''];
  for (const p of parts) {
    out.push(
      `--${b}`,
      `Content-Type: ${contentType(p.text)}; charset="utf-8"`,
      'MIME-Version: 1.0',
      'Content-Transfer-Encoding: 8bit',
      `Content-Disposition: attachment; filename=${quoted(p.filename)}`,
      '',
      // The line break before the next delimiter belongs to the delimiter, so the part's text
      // comes back exactly as rendered.
      p.text,
    );
  }
  out.push(`--${b}--`, '');
  return out.join('\n');
}
