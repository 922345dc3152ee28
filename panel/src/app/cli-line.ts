/** The `butter …` line of an action, quoted as a POSIX shell reads it (pure: tested in test/panel-logic.test.ts). */

/** Quotes one shell word when it needs it: `web` stays, `a b` becomes `'a b'`. */
export function shellWord(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/** `butter` and the words, quoted; `undefined`/`false` words are left out (optional flags). */
export function cliLine(words: (string | number | undefined | false)[]): string {
  return ['butter', ...words.filter((w): w is string | number => w !== undefined && w !== false).map((w) => shellWord(String(w)))].join(' ');
}
