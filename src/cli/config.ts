/**
 * Where the CLI finds its control plane: `BUTTER_URL`/`BUTTER_TOKEN`, else
 * `~/.config/butter/config.json` (written by `butter login` and `butter up`).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Client } from '../sdk/client.ts';
import { z } from 'zod';
import { writeFileAtomic } from '../lib/atomic-file.ts';
import { CorruptStateError, checkWith, readJsonState } from '../lib/state-file.ts';

export interface CliConfig {
  url: string;
  token: string;
  /** The control plane's CA (PEM), pinned at login. */
  ca?: string;
}

export function configDir(): string {
  return join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'butter');
}

export function configFile(): string {
  return join(configDir(), 'config.json');
}

const SavedConfig: z.ZodType<Partial<CliConfig>> = z.object({ url: z.string().optional(), token: z.string().optional(), ca: z.string().optional() });

export function loadConfig(): CliConfig | undefined {
  const envUrl = process.env.BUTTER_URL || undefined; // set but empty counts as unset
  const envToken = process.env.BUTTER_TOKEN || undefined;
  let saved: Partial<CliConfig> = {};
  try {
    saved = readJsonState(configFile(), checkWith(SavedConfig)) ?? {};
  } catch (e) {
    // With both variables set the file is not needed (its CA belongs to its own URL anyway).
    if (!(e instanceof CorruptStateError)) throw e;
    if (!(envUrl && envToken)) throw new Error(`${e.message}: run butter login again (or remove it and set BUTTER_URL and BUTTER_TOKEN)`);
  }
  const url = envUrl ?? saved.url;
  const token = envToken ?? saved.token;
  // BUTTER_CA names a PEM file; the saved CA belongs to the saved URL only.
  const ca = process.env.BUTTER_CA ? readFileSync(process.env.BUTTER_CA, 'utf8') : url === saved.url ? saved.ca : undefined;
  return url && token ? { url, token, ...(ca ? { ca } : {}) } : undefined;
}

export function saveConfig(cfg: CliConfig): string {
  mkdirSync(configDir(), { recursive: true, mode: 0o700 });
  writeFileAtomic(configFile(), JSON.stringify(cfg, null, 2) + '\n', 0o600);
  return configFile();
}

export function client(): Client {
  const cfg = loadConfig();
  if (!cfg) throw new UsageError('not logged in: run `butter login URL --token TOKEN` or set BUTTER_URL and BUTTER_TOKEN');
  return new Client(cfg);
}

/** A mistake in how the CLI was called: exit code 2. */
export class UsageError extends Error {}
