/**
 * Cleanup of wireguard-go for tests and benchmarks. It outlives agents (like QEMU); deleting
 * its interface makes it exit cleanly and remove its control socket. Whatever is left is
 * killed, and its socket (shared by all namespaces, under /var/run/wireguard) removed.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';

export async function stopWireguardGo(ends: readonly { ns: string; iface: string }[]): Promise<void> {
  for (const { ns, iface } of ends) spawnSync('ip', ['-n', ns, 'link', 'del', iface]);
  await new Promise((r) => setTimeout(r, 200));
  for (const { iface } of ends) {
    spawnSync('pkill', ['-9', '-f', `^wireguard-go ${iface}$`]);
    rmSync(`/var/run/wireguard/${iface}.sock`, { force: true });
  }
}
