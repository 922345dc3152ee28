/**
 * Builds a node agent from command-line choices: which driver, whether KVM really works,
 * the host network adapter and the metadata server address.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Agent } from '../agent/agent.ts';
import { SystemExec } from '../agent/host/exec.ts';
import { probeAccel } from '../agent/host/kvm-probe.ts';
import { LinuxNetworkHost } from '../agent/host/linux-network.ts';
import { METADATA_ADDR } from '../agent/host/network.ts';
import { QemuDriver } from '../agent/host/qemu-driver.ts';
import { SimDriver } from '../agent/host/sim-driver.ts';
import type { Client } from '../sdk/client.ts';
import type { Logger } from './logger.ts';

export interface AgentRuntimeOptions {
  client: Client;
  node: string;
  stateDir: string;
  driver: 'qemu' | 'sim';
  noEgress: boolean;
  metadataPort?: number;
  log: Logger;
}

export async function buildAgent(o: AgentRuntimeOptions): Promise<Agent> {
  const stateDir = resolve(o.stateDir);
  mkdirSync(stateDir, { recursive: true, mode: 0o711 });
  const exec = new SystemExec();
  const log = (m: string) => o.log.info({ component: 'agent' }, m);
  if (o.driver === 'sim') {
    return new Agent({ client: o.client, node: o.node, stateDir, driver: new SimDriver({ stateDir, log }), accel: { accel: 'tcg', reason: 'simulated driver' }, log });
  }
  const accel = await probeAccel(exec);
  // One warning, once: TCG works everywhere but is an order of magnitude slower.
  if (accel.accel === 'tcg') o.log.warn(`KVM acceleration unavailable (${accel.reason}); guests run under TCG emulation`);
  return new Agent({
    client: o.client,
    node: o.node,
    stateDir,
    driver: new QemuDriver({ exec, stateDir, accel: accel.accel, log }),
    network: new LinuxNetworkHost({ exec, stateDir, log }),
    accel,
    noEgress: o.noEgress,
    metadataListen: { host: METADATA_ADDR, port: o.metadataPort ?? 80 },
    log,
  });
}
