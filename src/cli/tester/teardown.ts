/**
 * Removes a test's throwaway network and everything in it: every service (the one under test
 * and those its fixture made), every other VM on it, then the network. Repeated until the
 * network is gone, because a create the tester abandoned at a signal may still land after the
 * first listing, and a network is refused while a VM is attached; bounded by a deadline, past
 * which it says what is left.
 */
import type { Butter } from '../../sdk/connect.ts';
import { ButterError } from '../../sdk/client.ts';

const gone = (e: unknown) => e instanceof ButterError && e.status === 404;

export async function teardown(client: Butter, network: string, opts: { deadlineMs?: number; log?: (m: string) => void } = {}): Promise<void> {
  const end = Date.now() + (opts.deadlineMs ?? 10 * 60_000);
  const log = opts.log ?? (() => {});
  const asked = new Set<string>();
  let left = '';
  for (;;) {
    if (!(await client.network.get(network))) return;
    const services = await client.service.list(network);
    for (const s of services) {
      if (s.state === 'deleting' || asked.has(`service ${s.name}`)) continue;
      asked.add(`service ${s.name}`);
      log(`deleting service ${s.name}`);
      await client.call('deleteService', { params: { name: s.name } }).catch((e: unknown) => {
        if (!gone(e)) throw e;
      });
    }
    const vms = (await client.call('listVms', {})).items.filter((v) => v.service === null && v.nics.some((n) => n.network === network));
    for (const v of vms) {
      if (v.state === 'deleting' || asked.has(`vm ${v.name}`)) continue;
      asked.add(`vm ${v.name}`);
      log(`deleting VM ${v.name}`);
      await client.call('deleteVm', { params: { name: v.name } }).catch((e: unknown) => {
        if (!gone(e)) throw e;
      });
    }
    if (services.length === 0 && vms.length === 0) {
      try {
        await client.network.destroy(network);
        log(`deleted network ${network}`);
        return;
      } catch (e) {
        if (gone(e)) return;
        if (!(e instanceof ButterError && e.status === 409)) throw e;
        left = e.message; // a VM still attached (its delete not yet confirmed by its node), a VPN peer
      }
    } else {
      left = [...services.map((s) => `service ${s.name}`), ...vms.map((v) => `VM ${v.name}`)].join(', ');
    }
    if (Date.now() > end) throw new Error(`could not remove network ${network}: ${left}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
