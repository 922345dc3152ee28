/**
 * Scale to zero (issue 16): the bytes a VM's taps carried, both ways, from `/proc/net/dev`
 * (which shows the reader's own network namespace, unlike `/sys/class/net`: see qemu-stats.ts).
 * A tap that is not there counts nothing.
 */
import { readFile } from 'node:fs/promises';
import { netDevBytes } from '../../core/vm-stats.ts';

export type TapBytes = (taps: readonly string[]) => Promise<number>;

export function procTapBytes(procRoot = '/proc'): TapBytes {
  return async (taps) => {
    const net = netDevBytes(await readFile(`${procRoot}/net/dev`, 'utf8'));
    return taps.reduce((sum, t) => {
      const n = net.get(t);
      return n ? sum + n.rx + n.tx : sum;
    }, 0);
  };
}
