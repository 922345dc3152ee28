/**
 * Loads DIR/blueprint-fixture.ts (or .js) and checks it has the tester's interface
 * (sdk/testing.ts). The CLI runs compiled JavaScript on plain Node 20, which cannot import
 * TypeScript: a `.ts` fixture goes through tsx's `tsImport` (tsx/esm/api), which compiles it
 * and whatever it imports with esbuild in a loader scoped to that one import, so the CLI's own
 * modules are never touched by it. It is loaded only when a `.ts` fixture is found.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BlueprintFixture } from '../../sdk/testing.ts';
import { UsageError } from '../config.ts';

export const FIXTURE_FILES = ['blueprint-fixture.ts', 'blueprint-fixture.js', 'blueprint-fixture.mjs'] as const;

export async function loadFixture(dir: string): Promise<{ file: string; fixture: BlueprintFixture }> {
  const found = FIXTURE_FILES.map((f) => join(dir, f)).filter((f) => existsSync(f));
  if (found.length === 0) throw new UsageError(`fixture: no ${FIXTURE_FILES.join(' or ')} in ${dir}`);
  if (found.length > 1) throw new UsageError(`fixture: both ${found.join(' and ')}: keep one`);
  const file = found[0]!;
  let mod: Record<string, unknown>;
  try {
    if (file.endsWith('.ts')) {
      const { tsImport } = await import('tsx/esm/api');
      mod = (await tsImport(pathToFileURL(file).href, import.meta.url)) as Record<string, unknown>;
    } else {
      mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    }
  } catch (e) {
    throw new UsageError(`fixture: cannot load ${file}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
  }
  // `export default { ... }` or named exports; a default export of another kind is not the fixture.
  const dflt = mod.default;
  const src = dflt && typeof dflt === 'object' && typeof (dflt as Record<string, unknown>).verify === 'function' ? (dflt as Record<string, unknown>) : mod;
  for (const name of ['setupBeforeTestedService', 'verify'] as const) {
    if (typeof src[name] !== 'function') throw new UsageError(`fixture: ${file} exports no function ${name}`);
  }
  if (src.setupAfterTestedService !== undefined && typeof src.setupAfterTestedService !== 'function') throw new UsageError(`fixture: ${file}: setupAfterTestedService is not a function`);
  return { file, fixture: src as unknown as BlueprintFixture };
}
