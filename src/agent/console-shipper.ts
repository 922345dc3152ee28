/**
 * Ships each VM's captured serial console to the control plane, so `vm logs` works through
 * the API. The server ignores bytes it already has, so re-sending after a restart is safe.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import type { Client } from '../sdk/client.ts';

const CHUNK = 256 * 1024;

export class ConsoleShipper {
  private readonly offsets = new Map<string, number>();

  constructor(
    private readonly client: Client,
    private readonly node: string,
    private readonly logPath: (id: string) => string,
  ) {}

  async ship(ids: Iterable<string>): Promise<void> {
    for (const id of ids) {
      const file = this.logPath(id);
      if (!existsSync(file)) continue;
      let offset = this.offsets.get(id) ?? 0;
      const size = statSync(file).size;
      while (offset < size) {
        const buf = Buffer.alloc(Math.min(CHUNK, size - offset));
        const fd = openSync(file, 'r');
        let n: number;
        try {
          n = readSync(fd, buf, 0, buf.length, offset);
        } finally {
          closeSync(fd);
        }
        if (n === 0) break;
        await this.client.call('nodeConsole', { params: { name: this.node, id }, body: { offset, base64: buf.subarray(0, n).toString('base64') } });
        offset += n;
        this.offsets.set(id, offset);
      }
    }
  }

  forget(id: string): void {
    this.offsets.delete(id);
  }
}
