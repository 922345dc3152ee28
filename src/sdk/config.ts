/**
 * Where a client finds its control plane when it is not told: `BUTTER_URL`/`BUTTER_TOKEN`
 * (and `BUTTER_CA`, a PEM file), else `$XDG_CONFIG_HOME/butter/config.json` (default
 * `~/.config/butter/`), written by `butter login` and `butter up`. Here rather than in the
 * CLI so that the SDK's `connect()` reads exactly what the `butter` command reads.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
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
