/**
 * `butter test DIR [deploy|check|cleanup|run]`: the original's blueprint tester. `deploy` makes
 * a throwaway network (a unique name, a CIDR no network or node address takes), runs the
 * fixture's `setupBeforeTestedService`, creates the service under test from DIR/blueprint.yml
 * with the variables it returned and waits for it to run, then `setupAfterTestedService`;
 * `check` runs `verify` and then checks the data plane against the paths; `cleanup` removes the
 * network with everything in it; `run` is all three, the cleanup whatever happened. What
 * `deploy` made is kept in DIR/.butter/ (state.ts) for the other commands.
 *
 * Exit codes, for a CI: 0 passed; 1 the test failed (verify threw, or the data plane disagreed
 * with the paths); 2 the command was wrong (no blueprint, no fixture, a deployment already
 * there); 3 the deployment failed (a fixture's setup threw, the service did not start); 4 the
 * cleanup failed (something may be left: the message names it); 128 + N after signal N (130
 * for Ctrl-C), once torn down.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { throwawayCidr } from '../../core/throwaway-cidr.ts';
import { loadBundle, type Bundle } from '../../sdk/blueprint-bundle.ts';
import type { Butter } from '../../sdk/connect.ts';
import type { Network } from '../../sdk/networks.ts';
import type { Service } from '../../sdk/services.ts';
import { consoleOutput, endpoint, httpGet, retry, type BlueprintFixture, type SetupInfo, type TestContext } from '../../sdk/testing.ts';
import { UsageError } from '../config.ts';
import { loadFixture } from './fixture.ts';
import { guardInterrupts, Interrupted, type InterruptGuard } from './interrupt.ts';
import { verifyPaths } from './path-verify.ts';
import { clearState, readState, stateFile, writeState, type TestState } from './state.ts';
import { teardown } from './teardown.ts';

export const TEST_COMMANDS = ['deploy', 'check', 'cleanup', 'run'] as const;
export type TestCommand = (typeof TEST_COMMANDS)[number];

export const EXIT = { passed: 0, failed: 1, usage: 2, deployFailed: 3, cleanupFailed: 4 } as const;

export interface Step {
  step: string;
  ok: boolean;
  seconds: number;
  /** Why it failed, or why it was skipped. */
  message?: string;
  skipped?: boolean;
}

export interface TestReport {
  ok: boolean;
  command: TestCommand;
  dir: string;
  network: string | null;
  service: string | null;
  steps: Step[];
  exitCode: number;
  /** The first failure, as one line. */
  error: string | null;
}

export interface TestOptions {
  dir: string;
  command: TestCommand;
  /** How long the service under test may take to run; default 10 min. */
  serviceTimeoutMs?: number;
  /** false: `check` does not run `path verify` (the report says it was skipped, and why). */
  pathVerify?: boolean;
  log?: (m: string) => void;
}

/** A failed step: which exit code it means. */
class StepFailed extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

const BLUEPRINT = 'blueprint.yml';
const hex = () => randomBytes(3).toString('hex');
/** DIR's name as the start of a DNS label: the service under test is `<dir>-<hex>`. */
const label = (dir: string) => basename(dir).toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40).replace(/-+$/, '') || 'test';
const oneLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0]!;

function setupInfoOf(v: unknown): SetupInfo {
  const isMap = (x: unknown) => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (!isMap(v) || !isMap((v as SetupInfo).deploymentInfo) || !isMap((v as SetupInfo).blueprintVars)) {
    throw new Error('setupBeforeTestedService must return { deploymentInfo: {...}, blueprintVars: {...} }');
  }
  // Kept in DIR/.butter/ between deploy and check: JSON only, as the original kept it.
  return JSON.parse(JSON.stringify(v)) as SetupInfo;
}

export class BlueprintTester {
  readonly dir: string;
  private readonly steps: Step[] = [];
  private readonly log: (m: string) => void;
  private state: TestState | undefined;
  private guard: InterruptGuard | undefined;

  constructor(
    private readonly client: Butter,
    private readonly opts: TestOptions,
  ) {
    this.dir = resolve(opts.dir);
    this.log = opts.log ?? ((m) => process.stderr.write(`butter test: ${m}\n`));
  }

  private context(): TestContext {
    return {
      client: this.client,
      dir: this.dir,
      uniqueName: (prefix) => `${prefix}-${hex()}`,
      retry,
      httpGet,
      endpoint: (service, port, o) => endpoint(this.client, service, port, o),
      consoleOutput: (service) => consoleOutput(this.client, service),
      log: (m) => this.log(m),
    };
  }

  /** Runs one step, timed and recorded; a signal stops it (Interrupted); a failure becomes `exitCode`. */
  private async step<T>(name: string, exitCode: number, fn: () => Promise<T> | T): Promise<T> {
    const t0 = Date.now();
    const seconds = () => Math.round((Date.now() - t0) / 100) / 10;
    try {
      const v = await this.guard!.race(Promise.resolve().then(fn));
      this.steps.push({ step: name, ok: true, seconds: seconds() });
      return v;
    } catch (e) {
      this.steps.push({ step: name, ok: false, seconds: seconds(), message: oneLine(e) });
      if (e instanceof Interrupted || e instanceof UsageError) throw e;
      throw new StepFailed(exitCode, `${name}: ${oneLine(e)}`);
    }
  }

  private checkDir(): Bundle {
    if (!existsSync(this.dir) || !statSync(this.dir).isDirectory()) throw new UsageError(`dir: ${this.opts.dir} is not a directory`);
    const file = join(this.dir, BLUEPRINT);
    if (!existsSync(file)) throw new UsageError(`dir: no ${BLUEPRINT} in ${this.opts.dir}`);
    try {
      return loadBundle(file);
    } catch (e) {
      throw new UsageError(oneLine(e));
    }
  }

  async run(): Promise<TestReport> {
    this.guard = guardInterrupts(() => `stopped: the network ${this.state?.network ?? '(none yet)'} may be left; remove it with \`butter test ${this.opts.dir} cleanup\``);
    let exitCode: number = EXIT.passed;
    let error: string | null = null;
    const fail = (code: number, e: unknown) => {
      if (error === null) error = oneLine(e);
      // A cleanup that failed matters most (something is left), then a signal, then the first failure.
      if (exitCode === EXIT.passed || code === EXIT.cleanupFailed) exitCode = code;
    };
    try {
      const cmd = this.opts.command;
      if (cmd === 'cleanup') {
        await this.cleanup();
      } else if (cmd === 'check') {
        await this.check();
      } else {
        try {
          await this.deploy();
          if (cmd === 'run') await this.check();
        } catch (e) {
          // deploy (with its signal) and run tear down; check never: the deployment is the user's to keep.
          fail(e instanceof StepFailed ? e.exitCode : e instanceof Interrupted ? e.exitCode : EXIT.failed, e);
          if (e instanceof UsageError && !this.state) throw e;
        }
        if (this.state && (cmd === 'run' || exitCode !== EXIT.passed)) {
          try {
            await this.cleanup(true);
          } catch (e) {
            fail(EXIT.cleanupFailed, e);
          }
        }
      }
    } catch (e) {
      if (e instanceof UsageError) throw e;
      fail(e instanceof StepFailed ? e.exitCode : e instanceof Interrupted ? e.exitCode : EXIT.failed, e);
    } finally {
      this.guard.dispose();
    }
    const sig = this.guard.interrupted;
    if (sig) exitCode = exitCode === EXIT.cleanupFailed ? exitCode : sig.exitCode;
    return { ok: exitCode === EXIT.passed, command: this.opts.command, dir: this.opts.dir, network: this.state?.network ?? null, service: this.state?.service ?? null, steps: this.steps, exitCode, error };
  }

  private save(s: TestState): void {
    this.state = s;
    writeState(this.dir, s);
  }

  private async deploy(): Promise<void> {
    const bundle = this.checkDir();
    const before = readState(this.dir);
    if (before) throw new UsageError(`state: ${stateFile(this.dir)} holds a deployment (network ${before.network}): check it with \`butter test ${this.opts.dir} check\` or remove it with \`butter test ${this.opts.dir} cleanup\``);
    const { fixture } = await loadFixture(this.dir);
    const t = this.context();
    const network = await this.step('network', EXIT.deployFailed, async () => {
      const [nets, nodes] = await Promise.all([this.client.network.list(), this.client.call('listNodes', {})]);
      const addresses = nodes.items.flatMap((n) => (n.mesh ? [n.mesh.address, ...(n.mesh.endpoint ? [n.mesh.endpoint.replace(/:\d+$/, '')] : [])] : []));
      const cidr = throwawayCidr(
        nets.map((n) => n.cidr),
        addresses,
      );
      if (!cidr) throw new Error('no free /22 left in 10.200.0.0/13 for a throwaway network');
      const id = hex();
      // Named before it is made: a crash from here on leaves a state file `cleanup` can finish from.
      this.save({ network: `test-${id}`, cidr, service: `${label(this.dir)}-${id}`, phase: 'deploying', createdAt: new Date().toISOString() });
      const made = await this.client.network.create(this.state!.network, { cidr });
      this.log(`network ${made.name} (${made.cidr}) created`);
      return made;
    });
    const info = await this.step('setupBeforeTestedService', EXIT.deployFailed, async () => setupInfoOf(await fixture.setupBeforeTestedService(network, t)));
    this.save({ ...this.state!, setupInfo: info });
    const service = await this.step('service', EXIT.deployFailed, async () => {
      const name = this.state!.service;
      this.log(`creating service ${name} from ${BLUEPRINT}, waiting for it to run`);
      const s = await this.client.service.create(network.name, name, { blueprint: { text: bundle.blueprint, files: bundle.files, file: bundle.file }, vars: info.blueprintVars, wait: { timeoutMs: this.opts.serviceTimeoutMs ?? 10 * 60_000 } });
      this.log(`service ${s.name} is running (${s.instances.length} instance(s))`);
      return s;
    });
    if (fixture.setupAfterTestedService) await this.step('setupAfterTestedService', EXIT.deployFailed, () => fixture.setupAfterTestedService!(network, service, info, t));
    this.save({ ...this.state!, phase: 'deployed' });
  }

  private async deployed(): Promise<{ state: TestState & { setupInfo: SetupInfo }; network: Network; service: Service; fixture: BlueprintFixture }> {
    this.checkDir();
    const state = this.state ?? readState(this.dir);
    if (!state) throw new UsageError(`state: no deployment in ${this.opts.dir} (no ${stateFile(this.dir)}): run \`butter test ${this.opts.dir} deploy\` first`);
    this.state = state;
    if (state.phase !== 'deployed' || !state.setupInfo) throw new UsageError(`state: the deployment in ${this.opts.dir} did not finish: remove it with \`butter test ${this.opts.dir} cleanup\``);
    const { fixture } = await loadFixture(this.dir);
    const network = await this.client.network.get(state.network);
    const service = network && (await this.client.service.get(state.network, state.service));
    if (!network || !service) throw new StepFailed(EXIT.failed, `state: ${network ? `service ${state.service}` : `network ${state.network}`} is gone; remove what is left with \`butter test ${this.opts.dir} cleanup\``);
    return { state: state as TestState & { setupInfo: SetupInfo }, network, service, fixture };
  }

  private async check(): Promise<void> {
    const { state, network, service, fixture } = await this.deployed();
    await this.step('verify', EXIT.failed, () => fixture.verify(network, service, state.setupInfo, this.context()));
    this.log('verify passed');
    // After verify, the data plane against the paths (issue 14): every disagreement fails the test.
    const t0 = Date.now();
    const paths = this.opts.pathVerify === false ? { checked: false as const, reason: 'not asked for (--no-path-verify)' } : await this.guard!.race(verifyPaths(this.client, network.name));
    if (paths.checked) {
      const ok = paths.disagreements.length === 0;
      this.steps.push({ step: 'path verify', ok, seconds: Math.round((Date.now() - t0) / 100) / 10, ...(ok ? {} : { message: paths.disagreements.join('; ') }) });
      if (!ok) throw new StepFailed(EXIT.failed, `path verify: the data plane disagrees with the paths: ${paths.disagreements.join('; ')}`);
      this.log(`path verify: the data plane agrees with the paths (${paths.probed} probe(s))`);
    } else {
      this.steps.push({ step: 'path verify', ok: true, skipped: true, seconds: 0, message: paths.reason });
      this.log(`path verify skipped: ${paths.reason}`);
    }
  }

  /** `quiet`: no state is no error (run and deploy call it after a failure). */
  private async cleanup(quiet = false): Promise<void> {
    const state = this.state ?? readState(this.dir);
    if (!state) {
      if (!quiet) this.log(`nothing to clean up in ${this.opts.dir}`);
      return;
    }
    this.state = state;
    // Not raced against a signal: the first one is what started this cleanup; a second exits.
    const t0 = Date.now();
    try {
      await teardown(this.client, state.network, { log: (m) => this.log(m) });
    } catch (e) {
      this.steps.push({ step: 'cleanup', ok: false, seconds: Math.round((Date.now() - t0) / 100) / 10, message: oneLine(e) });
      throw new StepFailed(EXIT.cleanupFailed, `cleanup: ${oneLine(e)} (the state stays in ${stateFile(this.dir)}: run \`butter test ${this.opts.dir} cleanup\` again)`);
    }
    this.steps.push({ step: 'cleanup', ok: true, seconds: Math.round((Date.now() - t0) / 100) / 10 });
    clearState(this.dir);
  }
}
