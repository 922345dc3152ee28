/**
 * Where the CLI finds its control plane: `BUTTER_URL`/`BUTTER_TOKEN`, else
 * `~/.config/butter/config.json` (written by `butter login` and `butter up`; read by
 * sdk/config.ts, which the SDK's connect() shares).
 */
import { mkdirSync } from 'node:fs';
import { Client } from '../sdk/node-client.ts';
import { configDir, configFile, loadConfig, type CliConfig } from '../sdk/config.ts';
import { writeFileAtomic } from '../lib/atomic-file.ts';

// Reading lives in the SDK (its connect() reads the same); the CLI adds writing.
export { configDir, configFile, loadConfig, type CliConfig };

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

/** A command that printed its answer and ends with this exit code (`path check`: denied). */
export class ExitWith extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}
