/**
 * `butter/sdk` as another package gets it: the package is packed (`npm pack`, so only what it
 * ships) and unpacked into a scratch project's node_modules, its dependencies linked from ours
 * (offline, and nothing of ours is touched). Needs `npm run build`. The caller removes `work`.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const run = promisify(execFile);
export const root = fileURLToPath(new URL('..', import.meta.url));

/** `work`: the scratch dir (tarball, project); `project`: a package with `butter` in its node_modules. */
export async function packSdk(): Promise<{ work: string; project: string }> {
  for (const f of ['dist/sdk/index.js', 'dist/sdk/index.d.ts']) if (!existsSync(join(root, f))) throw new Error(`no ${f}: run \`npm run build\` first`);
  const work = mkdtempSync(join(tmpdir(), 'butter-sdk-pkg-'));
  const { stdout } = await run('npm', ['pack', '--offline', '--json', '--pack-destination', work], { cwd: root });
  const tarball = join(work, (JSON.parse(stdout) as { filename: string }[])[0]!.filename);
  const project = join(work, 'app');
  const pkg = join(project, 'node_modules', 'butter');
  mkdirSync(pkg, { recursive: true });
  await run('tar', ['-xzf', tarball, '-C', pkg, '--strip-components=1']);
  // What `npm install` would add beside it: butter's dependencies, and @types/node for tsc.
  const deps = Object.keys((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies);
  for (const d of [...deps, '@types']) {
    // A scoped dependency (`@fastify/cookie`) lives in its scope's directory.
    mkdirSync(dirname(join(project, 'node_modules', d)), { recursive: true });
    symlinkSync(join(root, 'node_modules', d), join(project, 'node_modules', d));
  }
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', type: 'module', private: true, dependencies: { butter: `file:${tarball}` } }));
  return { work, project };
}

/** The environment for a script that connects as the CLI would: `XDG_CONFIG_HOME` holds a saved login, no BUTTER_* variables. */
export function savedLoginEnv(work: string, url: string, token: string): NodeJS.ProcessEnv {
  const cfg = join(work, 'cfg');
  mkdirSync(join(cfg, 'butter'), { recursive: true });
  writeFileSync(join(cfg, 'butter', 'config.json'), JSON.stringify({ url, token }), { mode: 0o600 });
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BUTTER_')));
  return { ...env, XDG_CONFIG_HOME: cfg };
}
