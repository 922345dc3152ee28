/**
 * The CLI equivalent of what a control does, copyable: the panel teaches the CLI. Give it the
 * words after `butter`; they are quoted as a POSIX shell needs.
 */
import { useState } from 'preact/hooks';

/** Quotes one shell word when it needs it: `web` stays, `a b` becomes `'a b'`. */
export function shellWord(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/** `butter` and the words, quoted; `undefined`/`false` words are left out (optional flags). */
export function cliLine(words: (string | number | undefined | false)[]): string {
  return ['butter', ...words.filter((w): w is string | number => w !== undefined && w !== false).map((w) => shellWord(String(w)))].join(' ');
}

export function CliHint({ args, label = 'CLI' }: { args: (string | number | undefined | false)[]; label?: string }) {
  const line = cliLine(args);
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(line);
      setCopied(true);
      setTimeout(() => setCopied(false), 1500);
    } catch {
      // No clipboard (an insecure origin): the text is selectable anyway.
    }
  };
  return (
    <div class="cli-hint">
      <span class="cli-label">{label}</span>
      <code data-testid="cli">{line}</code>
      <button type="button" class="small" onClick={copy} aria-label={`copy: ${line}`}>
        {copied ? 'copied' : 'copy'}
      </button>
    </div>
  );
}
