/** Sizes carry units (`512M`, `2G`); binary multiples, as QEMU and `free -h` use them. */
const UNITS: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

export const SIZE_PATTERN = /^([0-9]+(?:\.[0-9]+)?)([KMGT])i?B?$/i;

/** Parses `512M`, `1.5G`, `10GiB`; returns bytes or undefined when the text has no unit. */
export function parseSize(text: string): number | undefined {
  const m = SIZE_PATTERN.exec(text.trim());
  if (!m) return undefined;
  const unit = UNITS[m[2]!.toUpperCase()]!;
  return Math.round(Number(m[1]) * unit);
}

/**
 * As parseSize, also with blanks before the unit (`8 GiB`), which the original Butter's
 * blueprints allowed. Binary multiples here too, so `4GB` is 4 GiB as in `vm create`.
 */
export function parseBlueprintSize(text: string): number | undefined {
  return parseSize(text.replace(/^\s*([0-9.]+)\s+(?=[A-Za-z])/, '$1'));
}

/** Renders bytes exactly in the largest unit that divides them (`1G`, `1025K`), else bytes. */
export function formatSize(bytes: number): string {
  for (const u of ['T', 'G', 'M', 'K'] as const) {
    const v = bytes / UNITS[u]!;
    if (v >= 1 && Number.isInteger(v)) return `${v}${u}`;
  }
  return `${bytes}B`;
}

/** Renders bytes for humans, rounded to one decimal in the largest unit: `1.5G`. */
export function humanSize(bytes: number): string {
  for (const u of ['T', 'G', 'M', 'K'] as const) {
    const v = bytes / UNITS[u]!;
    if (v >= 1) return `${Number.isInteger(v) ? v : v.toFixed(1)}${u}`;
  }
  return `${bytes}B`;
}

export const MiB = 1024 ** 2;
export const GiB = 1024 ** 3;
