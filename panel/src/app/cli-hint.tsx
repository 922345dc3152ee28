/**
 * The CLI equivalent of what a control does, copyable: the panel teaches the CLI. Give it the
 * words after `butter`; they are quoted as a POSIX shell needs.
 */
import { useState } from 'preact/hooks';
import { cliLine } from './cli-line.ts';

export { cliLine, shellWord } from './cli-line.ts';

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
