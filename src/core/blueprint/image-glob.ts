/** `image.name`: an image name, or a glob over names (`debian-12-*`) picking among images. */

/** What an image name (a DNS label) or a glob of one may hold: `*`, `?` and `[...]` classes. */
export const IMAGE_PATTERN = /^[a-z0-9*?[\]-]{1,63}$/;

export function isImageGlob(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

/** Whether `name` matches `pattern` (`*` any run, `?` one character, `[a-z]` a class), whole. */
export function imageMatches(pattern: string, name: string): boolean {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += `[${pattern.slice(i + 1, end).replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\\]]/g, (m) => `\\${m}`);
  }
  try {
    return new RegExp(`^${re}$`).test(name);
  } catch {
    return false; // a class like [z-a]: matches nothing
  }
}
