/**
 * `npm run bench`: the issues' figures, measured side by side in one run, printed,
 * written to bench/results.json and rendered into docs/benchmarks.md.
 *
 *   (a) create → guest fetched its metadata, Butter vs bare QEMU   (boot.ts)
 *   (b) create-VM API latency at 100 requests/s                    (create-latency.ts)
 *   (c) metadata GET latency                                       (metadata.ts)
 *   (d) control-plane RSS after (b)                                (rss.ts)
 *   (e) durable placements/s, 10,000 over 1,000 nodes              (placement.ts)
 *   (f) 1,000 sim agents' heartbeat p99; RSS with 10,000 VMs       (cluster-scale.ts)
 *   (g)–(i) the overlay and guest-to-guest TCP, mesh join          (overlay.ts, mesh-join.ts, guest-overlay.ts)
 *   (j) a 100-instance service vs 100 VM creates, 1,000 nodes      (service-create.ts)
 *   (k) rolling update of 10 instances: time, DNS answers missing  (service-rollout.ts)
 *   (l) path add/remove → enforced on the remote node               (path-enforce.ts)
 *   (m) inet butter_paths at 1,000 services / 5,000 paths            (path-scale.ts)
 *   (n) a change committed → its live event at an SDK client        (event-latency.ts)
 *   (o) web panel: change → shown in Chromium; first load            (panel.ts)
 *   (p) guest pause for a disk snapshot of a running tiny VM         (snapshot-pause.ts)
 *   (q) suspend and resume of a 256 MB tiny VM, its memory state    (memory-snapshot.ts)
 *   (s) wake from zero: connection → first byte of a sleeping VM     (wake-from-zero.ts)
 *   (t) guest pause for a memory snapshot of a 256 MB tiny VM       (memory-snapshot-pause.ts)
 *
 * Every figure is bounded in time; one that fails or times out is reported as an error and
 * the others still run. Everything set up on the host is undone (cleanup.ts), on Ctrl-C too.
 * Exit status: 0 when every figure was measured (a missed goal is a result, not a crash),
 * 1 when one could not be.
 *
 * Environment: BENCH_ONLY=a,c (a subset; prints, writes nothing), BENCH_BOOT_RUNS=N (default
 * 3), BENCH_NO_BUILD=1 (skip `tsc -p tsconfig.build.json`; the CLI runs from dist/).
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { BOOT_DEFAULTS, benchBoot } from './boot.ts';
import { cleanupOnSignals, runCleanups, wasInterrupted } from './cleanup.ts';
import { benchClusterScale } from './cluster-scale.ts';
import { benchCreateLatency } from './create-latency.ts';
import { benchEventLatency } from './event-latency.ts';
import { FIGURE_IDS, FIGURES, judge, type FigureDataMap, type FigureId, type FigureResult } from './figures.ts';
import { machineFacts, waitForQuiet } from './machine.ts';
import { benchMetadata } from './metadata.ts';
import { benchMeshJoin } from './mesh-join.ts';
import { benchGuestOverlay } from './guest-overlay.ts';
import { benchOverlay } from './overlay.ts';
import { benchPathEnforce } from './path-enforce.ts';
import { benchPathScale } from './path-scale.ts';
import { benchPanel } from './panel.ts';
import { benchPlacement } from './placement.ts';
import { renderMarkdown, renderSummary, type Results } from './report.ts';
import { benchServiceCreate } from './service-create.ts';
import { benchServiceRollout } from './service-rollout.ts';
import { benchSnapshotPause } from './snapshot-pause.ts';
import { benchMemorySnapshot } from './memory-snapshot.ts';
import { benchWakeFromZero } from './wake-from-zero.ts';
import { benchMemorySnapshotPause } from './memory-snapshot-pause.ts';
import { benchWarmStart } from './warm-start.ts';
import { readRss } from './rss.ts';
import { startServerProcess, type ServerProcess } from './server-process.ts';
import { within } from './stats.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const RESULTS = fileURLToPath(new URL('./results.json', import.meta.url));
const DOC = fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url));

const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((s) => s.trim())) : undefined;
const wanted = (id: FigureId) => !only || only.has(id);
const log = (m: string) => console.log(m);

function build(): Results['build'] {
  if (process.env.BENCH_NO_BUILD === '1') return { ok: true, skipped: true, seconds: 0 };
  const t0 = Date.now();
  log('building dist/ (tsc -p tsconfig.build.json) for the CLI ...');
  const r = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { cwd: REPO, encoding: 'utf8', timeout: 180_000 });
  const seconds = (Date.now() - t0) / 1000;
  if (r.status === 0) return { ok: true, seconds };
  const error = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim().split('\n').slice(0, 10).join('\n');
  log(`build failed; the CLI figures use the existing dist/, which may be stale:\n${error}`);
  return { ok: false, seconds, error };
}

function otherQemus(): number {
  const r = spawnSync('pgrep', ['-c', '-f', '^qemu-system'], { encoding: 'utf8' });
  return Number(r.stdout.trim()) || 0;
}

async function figure<I extends FigureId>(id: I, budgetMs: number, fn: () => Promise<FigureDataMap[I]>): Promise<FigureResult<I>> {
  const def = FIGURES[id];
  log(`\n(${id}) ${def.title}`);
  const cpuBusyBefore = await waitForQuiet();
  const loadAvg1 = Math.round(os.loadavg()[0]! * 100) / 100;
  if (cpuBusyBefore >= 0.2) log(`    note: the machine is busy (${Math.round(cpuBusyBefore * 100)} % CPU) with other work; this figure will be pessimistic`);
  const t0 = Date.now();
  const seconds = () => Math.round((Date.now() - t0) / 100) / 10;
  try {
    const running = fn();
    const TIMEOUT = Symbol('timeout');
    const data = await within(running, budgetMs, TIMEOUT);
    if (data === TIMEOUT) {
      running.catch(() => {}); // it fails once its resources are gone; nobody is listening
      await runCleanups();
      throw new Error(`did not finish within ${budgetMs / 1000} s`);
    }
    const { pass, headline } = judge(id, data);
    const status = pass === null ? 'reported' : pass ? 'pass' : 'fail';
    log(`(${id}) ${headline} [${status}]`);
    return { ...def, status, pass, headline, seconds: seconds(), loadAvg1, cpuBusyBefore, data };
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    log(`(${id}) ERROR: ${error}`);
    return { ...def, status: 'error', pass: null, headline: 'not measured', error, seconds: seconds(), loadAvg1, cpuBusyBefore };
  }
}

async function main(): Promise<number> {
  cleanupOnSignals();
  const started = new Date();
  const buildResult = build();
  const machine = await machineFacts();
  const qemusBefore = otherQemus();
  log(`${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.kernel}, node ${machine.node}, ${machine.accel}`);
  if (qemusBefore) log(`note: ${qemusBefore} qemu-system process(es) of someone else are running; they compete for the CPUs`);

  const figures: FigureResult[] = [];
  if (wanted('c')) figures.push(await figure('c', 60_000, () => benchMetadata()));

  let server: ServerProcess | undefined;
  let idleMiB = NaN;
  try {
    if (wanted('b') || wanted('d')) {
      figures.push(
        await figure('b', 120_000, async () => {
          server = await startServerProcess();
          idleMiB = readRss(server.pid).rssMiB;
          log(`    butter server pid ${server.pid} at ${server.url}`);
          return benchCreateLatency(server);
        }),
      );
    }
    if (wanted('d')) {
      figures.push(
        await figure('d', 30_000, async () => {
          if (!server) throw new Error('no control plane: (b) could not start one');
          const rss = readRss(server.pid); // before anything else allocates in it
          const vms = (await server.admin.call('listVms', {})).items.length;
          return { ...rss, idleMiB, vms };
        }),
      );
    }
  } finally {
    await (server as ServerProcess | undefined)?.stop();
  }

  // The cluster figures: in-process placement throughput, then 1,000 agents against a fresh server.
  if (wanted('e')) figures.push(await figure('e', 180_000, () => benchPlacement()));
  if (wanted('f')) figures.push(await figure('f', 420_000, () => benchClusterScale(undefined, (m) => log(`    ${m}`))));
  // The services figures: placement of a whole service, then a rolling update through sim agents.
  if (wanted('j')) figures.push(await figure('j', 240_000, () => benchServiceCreate(undefined, (m) => log(`    ${m}`))));
  if (wanted('k')) figures.push(await figure('k', 180_000, () => benchServiceRollout(undefined, (m) => log(`    ${m}`))));

  // The paths figures: the ruleset at scale in a namespace, then add/remove through real agents.
  if (wanted('m')) figures.push(await figure('m', 120_000, () => benchPathScale(undefined, (m) => log(`    ${m}`))));
  if (wanted('l')) figures.push(await figure('l', 240_000, () => benchPathEnforce(undefined, (m) => log(`    ${m}`))));

  // Live events: commit → server-sent event at an SDK client of a `butter server` process.
  if (wanted('n')) figures.push(await figure('n', 120_000, () => benchEventLatency(undefined, (m) => log(`    ${m}`))));

  // The panel: a browser against a control plane of its own.
  if (wanted('o')) figures.push(await figure('o', 240_000, () => benchPanel(undefined, (m) => log(`    ${m}`))));

  if (wanted('g')) figures.push(await figure('g', 240_000, () => benchOverlay(undefined, (m) => log(`    ${m}`))));
  if (wanted('h')) figures.push(await figure('h', 120_000, () => benchMeshJoin(undefined, (m) => log(`    ${m}`))));
  if (wanted('i')) figures.push(await figure('i', 420_000, () => benchGuestOverlay(undefined, (m) => log(`    ${m}`))));

  if (wanted('p')) figures.push(await figure('p', 300_000, () => benchSnapshotPause(10, (m) => log(`    ${m}`))));
  if (wanted('q')) figures.push(await figure('q', 300_000, () => benchMemorySnapshot(5, (m) => log(`    ${m}`))));
  if (wanted('r')) figures.push(await figure('r', 600_000, () => benchWarmStart(10, 3, (m) => log(`    ${m}`))));
  if (wanted('s')) figures.push(await figure('s', 420_000, () => benchWakeFromZero(5, (m) => log(`    ${m}`))));
  if (wanted('t')) figures.push(await figure('t', 300_000, () => benchMemorySnapshotPause(5, (m) => log(`    ${m}`))));

  if (wanted('a')) {
    const runs = Number(process.env.BENCH_BOOT_RUNS ?? BOOT_DEFAULTS.runs);
    figures.push(await figure('a', 300_000, () => benchBoot({ ...BOOT_DEFAULTS, runs }, (m) => log(`    ${m}`))));
  }
  const leftovers = await runCleanups();
  if (leftovers.length) log(`cleaned up after a figure: ${leftovers.join(', ')}`);

  figures.sort((x, y) => FIGURE_IDS.indexOf(x.id) - FIGURE_IDS.indexOf(y.id));
  const results: Results = {
    date: started.toISOString(),
    seconds: Math.round((Date.now() - started.getTime()) / 100) / 10,
    machine,
    build: buildResult,
    otherQemuProcesses: qemusBefore,
    figures,
  };
  log('\n' + renderSummary(results));
  if (wasInterrupted()) {
    log('interrupted: nothing written');
  } else if (only) {
    log('BENCH_ONLY is set: nothing written');
  } else {
    writeFileSync(RESULTS, JSON.stringify(results, null, 2) + '\n');
    writeFileSync(DOC, renderMarkdown(results));
    log(`wrote ${RESULTS} and ${DOC}`);
  }
  return figures.some((f) => f.status === 'error') ? 1 : 0;
}

process.exitCode = await main();
