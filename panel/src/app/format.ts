/** How numbers read in the panel: sizes as the CLI prints them. */
import { humanSize } from '../../../src/core/units.ts';

export const size = (bytes: number): string => humanSize(bytes);
export const cpus = (n: number): string => `${Number.isInteger(n) ? n : n.toFixed(1)} cpu`;
export const when = (iso: string | null): string => (iso ? new Date(iso).toLocaleString() : '—');
