/**
 * Runs guests as daemonized QEMU processes. Each VM owns `<stateDir>/vms/<id>/` (disk,
 * sockets, console log, pidfile); the process is not a child of the agent, so a restarted
 * agent finds running VMs again from their pidfiles (`list`) instead of restarting them.
 * All of it is owner-only (0700 dirs, 0600 files and sockets) whatever the umask: a guest's
 * disk and console are its owner's, and QEMU's monitor socket is the VM's master key.
 *
 * How a run ended. Not being QEMU's parent, the agent cannot wait() for an exit status, so
 * the driver keeps a durable record instead, the file `power-state`:
 * - `running` is written just before QEMU is launched;
 * - QEMU runs with `-no-shutdown`: a guest poweroff does not end it but leaves it paused in run
 *   state `shutdown`. `reap` (before each reconcile) finds those and, for `shutdown`, writes
 *   `poweroff` first and then quits it. A killed QEMU just disappears.
 *   Asking every live QEMU over QMP would cost a connection per VM per reconcile; instead
 *   QEMU logs each change of its run state (`qemu.log`, `-trace enable=runstate_set`), a file
 *   only QEMU writes, and `reap` asks QMP `query-status` only of a QEMU whose last logged
 *   state is not `running` (or that logged none: a VM started by an older agent, a QEMU built
 *   without the log trace backend). QMP stays the judge; the log only spares the idle.
 * - the agent's own `stop` removes the file before it stops QEMU.
 * So a VM that is gone with `poweroff` was powered off by its guest; gone with `running`, QEMU
 * died without the guest asking: `killed` if its pidfile is still there (QEMU removes it on
 * every exit it lives through: SIGKILL, the OOM killer, a segfault), `exited` if not (SIGTERM,
 * an internal error). Every step is a file or a process that outlives the agent, so an agent
 * that restarts (or was down when it happened) reads the same answer; an event listener on a
 * held QMP connection would be lost with the agent. Without the file (a VM started by an
 * older agent) the exit is unknown.
 */
import { chmodSync, closeSync, existsSync, fstatSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import type { VmExit } from '../../core/restart-policy.ts';
import { writeFileAtomic } from '../../lib/atomic-file.ts';
import { createConnection } from 'node:net';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { dataDiskPath, pathsIn, qemuArgs, vmPaths, processMarker, type Accel, type VmPaths } from '../../core/qemu-args.ts';
import type { MemoryStates, ObservedVm, VmDriver, VmSpec, WarmStates } from './driver.ts';
import { randomBytes } from 'node:crypto';
import { WARM_IDENTITY_BYTES_V1, WARM_READY_LINE, WARM_READY_TIMEOUT_MS, warmIdentity, type WarmAddress } from '../../core/warm.ts';
import type { Exec } from './exec.ts';
import { QmpClient, setMigrationCapability, waitMigration, withTimeout } from './qmp.ts';
import { QemuVmStats } from './qemu-stats.ts';
import type { VmStats } from './vm-stats.ts';
import { Reverter } from './reverter.ts';
import { activeDisk, memorySnapshotPath, QemuDisks, shellQuote, snapshotLink } from './qemu-snapshots.ts';

export interface QemuDriverOptions {
  exec: Exec;
  stateDir: string;
  accel: Accel;
  qemuBinary?: string;
  log?: (msg: string) => void;
  /** Where to read `<pid>/cmdline`; a parameter so unit tests can fake running processes. */
  procRoot?: string;
}

/** Ids name directories and appear in QEMU options: keep them to a safe alphabet. */
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** sun_path is 108 bytes including the terminating NUL. */
const MAX_SOCKET_PATH = 107;
const POLL_MS = 50;
/**
 * How often a load of a memory state is asked whether it is done: a warm clone's takes ~20 ms
 * (a resume's ~0.1-0.3 s), and each poll's wait is the guest's; a query-migrate is cheap.
 */
const LOAD_POLL_MS = 2;
/** Saving or loading a memory state: 256 MB takes under a second under TCG; a wedged one is given up. */
const SUSPEND_TIMEOUT_MS = 120_000;
/** How much of the end of `qemu.log` is read for the last run state. */
const RUN_LOG_TAIL = 4096;
/** One line of QEMU's `runstate_set` trace (log backend), e.g. `... new_state 7 (shutdown)`. */
const RUNSTATE_LINE = /^runstate_set current_run_state \d+ \([a-z-]+\) new_state \d+ \(([a-z-]+)\)$/gm;
/** Run states in which a live QEMU waits for someone to go on (an agent that died mid-operation): see `recoverPaused`. */
const LEFT_PAUSED = new Set(['inmigrate', 'prelaunch', 'paused', 'postmigrate', 'finish-migrate']);

export class QemuDriver implements VmDriver {
  readonly name = 'qemu' as const;
  private readonly stateDir: string;
  private readonly procRoot: string;
  private readonly qemu: string;
  readonly stats: VmStats;
  readonly snapshots: QemuDisks;
  readonly memory: MemoryStates = {
    suspend: (id) => this.suspend(id),
    resume: (spec) => this.resume(spec),
    discard: async (id) => rmSync(this.paths(id).memoryState, { force: true }),
    launchFrom: (spec, from) => this.launchFromMemory(spec, memorySnapshotPath(this.paths(from.vm), from.snapshot)),
  };
  readonly warm: WarmStates = {
    has: (id) => existsSync(this.warmFile(id, 'template.json')),
    list: () => this.warmIds(),
    make: (template) => this.makeWarm(template),
    start: (spec, id, address) => this.startWarm(spec, id, address),
    remove: async (id) => this.removeWarm(id),
  };

  constructor(private readonly opts: QemuDriverOptions) {
    // Absolute: the daemonized QEMU chdir()s to `/`, and qcow2 backing paths must not be relative.
    this.stateDir = resolve(opts.stateDir);
    this.procRoot = opts.procRoot ?? '/proc';
    this.qemu = opts.qemuBinary ?? 'qemu-system-x86_64';
    // The same pidfile check as list(): a recycled pid is never read as the VM's.
    this.stats = new QemuVmStats({ exec: opts.exec, pidOf: (id) => this.livePid(id), qmpSocket: (id) => this.paths(id).qmpSock, procRoot: this.procRoot });
    this.snapshots = new QemuDisks({ exec: opts.exec, stateDir: this.stateDir, paths: (id) => this.paths(id), livePid: (id) => this.livePid(id), ...(opts.log ? { log: opts.log } : {}) });
  }

  /**
   * QEMU's console chardev is a unix socket server taking one client at a time; we connect
   * per write, which keeps no state in the agent and lets a restarted agent type at once.
   */
  async writeConsole(id: string, data: Buffer): Promise<void> {
    const sock = this.paths(id).consoleSock;
    await new Promise<void>((resolve, reject) => {
      const c = createConnection(sock, () => c.end(data));
      c.on('error', reject);
      c.on('close', () => resolve());
      c.resume();
    });
  }

  consoleLogPath(id: string): string {
    return this.paths(id).consoleLog;
  }

  async start(spec: VmSpec): Promise<{ resumed?: boolean }> {
    const p = this.paths(spec.id);
    // A cold start: a saved memory state (of the disk as it was) must never be resumed after it.
    rmSync(p.memoryState, { force: true });
    // The restore of a memory snapshot, once per generation: the guest goes on from the snapshot's instant.
    if (spec.restore?.memory && this.restoredGen(p) < spec.restore.gen && this.livePid(spec.id) === undefined) {
      const state = memorySnapshotPath(p, spec.restore.snapshot);
      if (!existsSync(state)) throw new Error(`snapshot ${spec.restore.snapshot} has no memory state on this host`);
      const { ms } = await this.launchFromMemory(spec, state);
      this.log(`${spec.id}: resumed from memory snapshot ${spec.restore.snapshot} in ${ms} ms`);
      return { resumed: true };
    }
    // ...and the guest boots its own kernel: no warm template's command line or identity any more.
    rmSync(this.warmArgsFile(spec.id), { force: true });
    await this.launch(spec, false);
    return {};
  }

  /**
   * Launches the VM (not running) from a saved memory state, `stateFile`, kept: on its disk as
   * the spec makes it (a restore's new layer on the snapshot's, a warm start's first layer on
   * the snapshot of another VM), with `-S -incoming defer`, `migrate-incoming` from
   * `exec:cat FILE`, and `cont` once it is loaded. The argv must be the one the state was
   * saved from (devices, memory, vCPUs). A restore's generation is recorded only after `cont`,
   * so an agent that dies before it starts the restore over (see `recoverPaused`). `ms`: from
   * the launch to running. The primitive of memory-snapshot restores and warm starts.
   */
  async launchFromMemory(spec: VmSpec, stateFile: string): Promise<{ ms: number }> {
    const p = this.paths(spec.id);
    let ms = 0;
    await this.launch(spec, true, async (t0) => {
      ms = await this.loadState(p, spec.id, stateFile, t0);
    });
    return { ms };
  }

  /** Gives a QEMU launched `-incoming defer` its state, waits until it is loaded, `cont`; the ms since `t0`. */
  private async loadState(p: VmPaths, id: string, stateFile: string, t0: number): Promise<number> {
    const client = await QmpClient.connect(p.qmpSock, 2000);
    try {
      await withTimeout(client.execute('migrate-incoming', { uri: `exec:cat ${shellQuote(stateFile)}` }), 5000);
      const status = await waitMigration(client, 'completed', SUSPEND_TIMEOUT_MS, LOAD_POLL_MS);
      if (status !== 'completed') throw new Error(`loading the memory state of ${id} ${status === undefined ? `took over ${SUSPEND_TIMEOUT_MS} ms` : `ended ${status}`}`);
      await withTimeout(client.execute('cont'), 5000);
      return Date.now() - t0;
    } finally {
      client.close();
    }
  }

  // ------------------------------------------------------------------ warm images (issue 16)

  private warmDir(id: string): string {
    if (!ID_RE.test(id)) throw new Error(`invalid warm state id: ${JSON.stringify(id)}`);
    return `${this.stateDir}/warm/${id}`;
  }

  private warmFile(id: string, name: 'template.json' | 'disk.qcow2' | 'memory.state' | 'memory.ram'): string {
    return `${this.warmDir(id)}/${name}`;
  }

  private warmIds(): string[] {
    try {
      return readdirSync(`${this.stateDir}/warm`).filter((id) => ID_RE.test(id) && existsSync(this.warmFile(id, 'template.json'))).sort();
    } catch {
      return [];
    }
  }

  /** Where a warm clone keeps the template's command line and its identity: a resume of it must launch the same argv. */
  private warmArgsFile(id: string): string {
    return `${this.paths(id).dir}/warm-args.json`;
  }

  /**
   * The template runs in the warm state's own directory (never under `vms/`, so it is no VM
   * the agent lists). Its one NIC is a tap QEMU makes itself (down, on no bridge, gone with
   * QEMU): the guest reaches nothing and holds no address. Its disk is an overlay on the
   * image, frozen (0400, a read-only base) once the state is saved; `template.json`, written
   * last, says the state is whole.
   */
  private async makeWarm(t: VmSpec): Promise<{ ms: number; sizeBytes: number }> {
    const dir = this.warmDir(t.id);
    if (this.warm.has(t.id)) return { ms: 0, sizeBytes: this.warmBytes(t.id) };
    const p = pathsIn(dir);
    for (const sock of [p.qmpSock, p.consoleSock]) {
      if (Buffer.byteLength(sock) > MAX_SOCKET_PATH) throw new Error(`socket path too long for a unix socket: ${sock}`);
    }
    const rev = new Reverter();
    const t0 = Date.now();
    try {
      rmSync(dir, { recursive: true, force: true }); // a half-made one from an agent that died
      rev.add(() => rmSync(dir, { recursive: true, force: true }));
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      for (const d of [`${this.stateDir}/warm`, dir]) chmodSync(d, 0o700);
      const disk = this.warmFile(t.id, 'disk.qcow2');
      const base = this.baseOf(t);
      if (base) {
        const size = await this.virtualSize(base.file, base.format);
        await this.opts.exec.run('qemu-img', ['create', '-f', 'qcow2', '-F', base.format, '-b', base.file, disk, String(size)]);
      } else {
        await this.opts.exec.run('qemu-img', ['create', '-f', 'qcow2', disk, String(1024 ** 3)]);
      }
      chmodSync(disk, 0o600);
      closeSync(openSync(p.consoleLog, 'w', 0o600));
      closeSync(openSync(p.runLog, 'w', 0o600));
      if (t.identity !== undefined) writeFileAtomic(p.identity, t.identity, 0o600);
      // Its RAM in a file of the state's, mapped shared: when it stops, the file is its RAM, and
      // the saved state below leaves it out (x-ignore-shared). A clone then maps the file
      // instead of loading ~90 MB from the state: 17-21 ms instead of 76-252 ms to load, in a
      // hand test of 5 clones each way (tiny, 256 MB, TCG, 2026-12-02).
      const ram = this.warmFile(t.id, 'memory.ram');
      closeSync(openSync(ram, 'w', 0o600));
      const spec: VmSpec = { ...t, memoryFile: { path: ram, shared: true } };
      rev.add(() => this.killPaths(p));
      await this.opts.exec.run(this.qemu, qemuArgs(spec, { ...p, disk }, this.opts.accel), { timeoutMs: 60_000 });
      for (const f of [p.qmpSock, p.consoleSock, p.pidFile]) if (existsSync(f)) chmodSync(f, 0o600);
      // The guest says when it is ready to be saved; one that does not know how never does.
      const deadline = Date.now() + WARM_READY_TIMEOUT_MS;
      for (;;) {
        if (WARM_READY_LINE.test(readFileSync(p.consoleLog, 'utf8'))) break;
        if (this.pidIn(p) === undefined) throw new Error(`the template's qemu exited before its guest signalled warm-ready; see ${p.runLog}`);
        if (Date.now() >= deadline) throw new Error(`guest never signalled warm-ready within ${WARM_READY_TIMEOUT_MS / 1000} s`);
        await sleep(POLL_MS);
      }
      const tmp = `${this.warmFile(t.id, 'memory.state')}.tmp`;
      closeSync(openSync(tmp, 'w', 0o600));
      const client = await QmpClient.connect(p.qmpSock, 2000);
      try {
        await setMigrationCapability(client, 'x-ignore-shared', true);
        await withTimeout(client.execute('migrate', { uri: `exec:cat > ${shellQuote(tmp)}` }), 5000);
        const status = await waitMigration(client, 'completed', SUSPEND_TIMEOUT_MS);
        if (status !== 'completed') throw new Error(`saving the template's state ${status === undefined ? `took over ${SUSPEND_TIMEOUT_MS} ms` : `ended ${status}`}; see ${p.runLog}`);
        await withTimeout(client.execute('quit'), 1000).catch(() => undefined);
      } finally {
        client.close();
      }
      let sizeBytes = fsyncFile(tmp);
      await this.waitPidGone(p, 5000);
      // The RAM the guest left in the file, on disk before the state that needs it is renamed in.
      fsyncFile(ram);
      renameSync(tmp, this.warmFile(t.id, 'memory.state'));
      this.killPaths(p);
      for (const f of [p.pidFile, p.qmpSock, p.consoleSock]) rmSync(f, { force: true });
      chmodSync(disk, 0o400); // the frozen layer: clones' overlays stand on it, nothing writes it
      const nics = t.nics.length;
      const diskBytes = await this.virtualSize(disk, 'qcow2');
      writeFileAtomic(this.warmFile(t.id, 'template.json'), `${JSON.stringify({ cmdline: t.boot.kind === 'kernel' ? t.boot.cmdline : null, cpus: t.cpus, memoryMiB: t.memoryMiB, nics, diskBytes, identity: t.identity, memoryFile: true })}\n`, 0o600);
      rev.done();
      const ms = Date.now() - t0;
      sizeBytes += allocatedBytes(ram);
      this.log(`warm state ${t.id} saved in ${ms} ms (${sizeBytes} bytes)`);
      return { ms, sizeBytes };
    } catch (e) {
      await rev.revert();
      throw e;
    }
  }

  /**
   * A new VM from a warm state: the same argv as the template's (devices, command line, a
   * zero-length difference in the identity's bytes) but its own disk (an overlay on the frozen
   * layer), taps, MAC and identity, `-incoming` from the saved state, then `cont`.
   */
  private async startWarm(spec: VmSpec, id: string, address?: WarmAddress): Promise<{ ms: number }> {
    const t = JSON.parse(readFileSync(this.warmFile(id, 'template.json'), 'utf8')) as { cmdline: string | null; cpus: number; memoryMiB: number; nics: number; identity?: string; memoryFile?: boolean };
    if (t.cpus !== spec.cpus || t.memoryMiB !== spec.memoryMiB || t.nics !== spec.nics.length) {
      throw new Error(`warm state ${id} is ${t.cpus} cpu, ${t.memoryMiB} MiB, ${t.nics} NIC: not this VM's size`);
    }
    const p = this.paths(spec.id);
    if (existsSync(p.disk)) throw new Error(`vm ${spec.id} has a disk already: only a first start is warm`);
    // As long as the template's (a state made before addresses were in it: 112 bytes, and no address).
    const bytes = t.identity?.length ?? WARM_IDENTITY_BYTES_V1;
    const identity = warmIdentity(randomBytes(8).toString('hex'), spec.nics[0]!.mac, randomBytes(32).toString('hex'), address, bytes);
    const boot = spec.boot.kind === 'kernel' && t.cmdline !== null ? { ...spec.boot, cmdline: t.cmdline } : spec.boot;
    // A state saved with its RAM in a file (memory.ram; not those made before): the clone maps it, private.
    const memoryFile = t.memoryFile ? { path: this.warmFile(id, 'memory.ram'), shared: false } : undefined;
    const warmSpec: VmSpec = { ...spec, boot, identity, warmBase: id, ...(memoryFile ? { memoryFile } : {}) };
    let ms = 0;
    const state = this.warmFile(id, 'memory.state');
    await this.launch(warmSpec, true, async (t0) => {
      // A resume of this clone (suspended, or an agent restart mid-start) must launch the same argv.
      writeFileAtomic(this.warmArgsFile(spec.id), `${JSON.stringify({ cmdline: t.cmdline, identity, ...(memoryFile ? { memoryFile: memoryFile.path } : {}) })}\n`, 0o600);
      const client = await QmpClient.connect(p.qmpSock, 2000);
      try {
        // The state was saved without the RAM: the stream says so, and the loader must expect it.
        // (A later suspend of the clone saves its RAM whole: its mapping is private, not shared.)
        if (memoryFile) await setMigrationCapability(client, 'x-ignore-shared', true);
        await withTimeout(client.execute('migrate-incoming', { uri: `exec:cat ${shellQuote(state)}` }), 5000);
        const status = await waitMigration(client, 'completed', SUSPEND_TIMEOUT_MS, LOAD_POLL_MS);
        if (status !== 'completed') throw new Error(`loading warm state ${id} ${status === undefined ? `took over ${SUSPEND_TIMEOUT_MS} ms` : `ended ${status}`}; see ${p.runLog}`);
        // Off again: a capability stays set in the process, and a state this clone saves later
        // (a suspend, a memory snapshot) is loaded without it.
        if (memoryFile) await setMigrationCapability(client, 'x-ignore-shared', false);
        await withTimeout(client.execute('cont'), 5000);
        ms = Date.now() - t0;
      } finally {
        client.close();
      }
    });
    this.log(`${spec.id}: started warm from ${id} in ${ms} ms`);
    return { ms };
  }

  /** What a warm state holds on disk: its saved state and, if it has one, the RAM file's blocks. */
  private warmBytes(id: string): number {
    const ram = this.warmFile(id, 'memory.ram');
    return statSync(this.warmFile(id, 'memory.state')).size + (existsSync(ram) ? allocatedBytes(ram) : 0);
  }

  /** The frozen layer's virtual size, as recorded when it was made (undefined for a state from before that). */
  private warmDiskBytes(id: string): number | undefined {
    try {
      const n = (JSON.parse(readFileSync(this.warmFile(id, 'template.json'), 'utf8')) as { diskBytes?: unknown }).diskBytes;
      return typeof n === 'number' ? n : undefined;
    } catch {
      return undefined;
    }
  }

  private removeWarm(id: string): void {
    const disk = this.warmFile(id, 'disk.qcow2');
    if (existsSync(disk)) {
      const users = this.snapshots.standingOn(realpathSync(disk));
      if (users.length) throw new Error(`warm state ${id} is the base of ${users.length} disk layer(s) on this host`);
    }
    rmSync(this.warmDir(id), { recursive: true, force: true });
    this.log(`warm state ${id} removed`);
  }

  /** The live QEMU of a run in directory `p` (a template), by its pidfile and marker-free check of the pidfile argument. */
  private pidIn(p: VmPaths): number | undefined {
    let pid: number;
    try {
      pid = Number.parseInt(readFileSync(p.pidFile, 'utf8').trim(), 10);
    } catch {
      return undefined;
    }
    if (!(pid > 0)) return undefined;
    try {
      const argv = readFileSync(`${this.procRoot}/${pid}/cmdline`, 'utf8').split('\0');
      const i = argv.indexOf('-pidfile');
      return i >= 0 && argv[i + 1] === p.pidFile ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private killPaths(p: VmPaths): void {
    const pid = this.pidIn(p);
    if (pid === undefined) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }

  private async waitPidGone(p: VmPaths, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.pidIn(p) !== undefined && Date.now() < deadline) await sleep(POLL_MS);
  }

  /**
   * Saves the running VM's RAM and device state into `memory.state`, then quits its QEMU
   * (issue 16). QMP `migrate` to `exec:cat > FILE`: the migration's last step stops the vCPUs
   * and flushes the disks, so the disk as saved is the one the state belongs to. The path is
   * absolute: the daemonized QEMU's working directory is `/` (`-daemonize` chdir()s there),
   * where a relative `cat > FILE` would land, or fail for an unprivileged user. The file is
   * written under a `.tmp` name and renamed once the migration completed and it is fsynced, so
   * a torn save is never taken for a state.
   */
  private async suspend(id: string): Promise<{ ms: number; sizeBytes: number }> {
    const p = this.paths(id);
    const pid = this.livePid(id);
    if (pid === undefined) throw new Error(`vm ${id} is not running`);
    const tmp = `${p.memoryState}.tmp`;
    rmSync(tmp, { force: true });
    closeSync(openSync(tmp, 'w', 0o600)); // cat > keeps the mode of a file that exists
    chmodSync(tmp, 0o600);
    const client = await QmpClient.connect(p.qmpSock, 2000);
    const t0 = Date.now();
    try {
      await withTimeout(client.execute('migrate', { uri: `exec:cat > ${shellQuote(tmp)}` }), 5000);
      const status = await waitMigration(client, 'completed', SUSPEND_TIMEOUT_MS, POLL_MS);
      if (status !== 'completed') {
        await withTimeout(client.execute('migrate_cancel'), 2000).catch(() => undefined);
        throw new Error(`saving the memory state of ${id} ${status === undefined ? `took over ${SUSPEND_TIMEOUT_MS} ms` : `ended ${status}`}`);
      }
    } catch (e) {
      client.close();
      rmSync(tmp, { force: true });
      throw e;
    }
    const ms = Date.now() - t0;
    const sizeBytes = fsyncFile(tmp);
    renameSync(tmp, p.memoryState);
    // This end is the agent's doing (not a crash): then the guest, paused after the migration, goes.
    rmSync(p.powerState, { force: true });
    try {
      await withTimeout(client.execute('quit'), 1000).catch(() => undefined);
    } finally {
      client.close();
    }
    if (!(await this.waitGone(id, pid, 2000))) {
      this.killNow(id);
      await this.waitGone(id, pid, 5000);
    }
    this.removeRuntimeFiles(p);
    this.log(`suspended ${id} in ${ms} ms (${sizeBytes} bytes of memory state)`);
    return { ms, sizeBytes };
  }

  /**
   * Starts QEMU paused on the saved state (`-S -incoming defer`, then `migrate-incoming` from
   * `exec:cat FILE`), waits until it is loaded, `cont`. The same argv as the run it was saved
   * from (same devices, MACs, disk); the state file goes once the guest runs again. A resume
   * that fails kills its QEMU and keeps the file (the next reconcile tries again).
   */
  private async resume(spec: VmSpec): Promise<{ ms: number }> {
    const p = this.paths(spec.id);
    if (!existsSync(p.memoryState)) throw new Error(`vm ${spec.id} has no saved memory state`);
    const { ms } = await this.launchFromMemory(spec, p.memoryState);
    rmSync(p.memoryState, { force: true });
    return { ms };
  }

  private async launch(spec: VmSpec, incoming: boolean, loaded?: (launchedAt: number) => Promise<void>): Promise<void> {
    const p = this.paths(spec.id);
    if (incoming && spec.identity === undefined) spec = this.withWarmArgs(spec);
    for (const sock of [p.qmpSock, p.consoleSock]) {
      if (Buffer.byteLength(sock) > MAX_SOCKET_PATH) throw new Error(`socket path too long for a unix socket: ${sock}`);
    }
    if (this.livePid(spec.id) !== undefined) return;
    const rev = new Reverter();
    try {
      if (!existsSync(p.dir)) {
        rev.add(() => rmSync(p.dir, { recursive: true, force: true }));
        mkdirSync(p.dir, { recursive: true, mode: 0o700 });
      }
      // mkdir's mode is filtered by the umask and leaves existing dirs as they were.
      for (const d of [`${this.stateDir}/vms`, p.dir]) chmodSync(d, 0o700);
      const layered = spec.initialSnapshot !== undefined || spec.base !== undefined || spec.baseFile !== undefined || spec.restore !== undefined || spec.warmBase !== undefined;
      if (!existsSync(p.disk)) {
        if (layered) {
          // Snapshots (issue 16): a chain of layers, the first of them the `initial` point.
          const base = this.baseOf(spec);
          // A warm state's layer has its size in template.json: one qemu-img run less on a warm start.
          const baseSize = spec.warmBase ? this.warmDiskBytes(spec.warmBase) : undefined;
          const size = base ? Math.max(spec.diskBytes, baseSize ?? (await this.virtualSize(base.file, base.format))) : spec.diskBytes;
          await this.snapshots.create(p, base, size, spec.initialSnapshot, (f) => rev.add(f));
        } else {
          // Registered before creating: a half-written disk is removed too.
          rev.add(() => rmSync(p.disk, { force: true }));
          await this.createDisk(spec, p);
        }
      } else {
        if (layered) this.snapshots.adopt(p);
        await this.growDisk(spec, p);
      }
      let restored: number | undefined;
      if (spec.restore && this.restoredGen(p) < spec.restore.gen) {
        await this.snapshots.restore(p, spec.restore.snapshot, spec.diskBytes);
        restored = spec.restore.gen;
        // A memory restore's is recorded once its guest runs (below): a launch that dies first is done over.
        if (!incoming) writeFileAtomic(`${p.dir}/restore-gen`, `${restored}\n`, 0o600);
        this.log(`${spec.id}: disk restored from snapshot ${spec.restore.snapshot}`);
      }
      if (existsSync(p.disk)) chmodSync(p.disk, 0o600); // qemu-img creates it with the umask's mode
      for (const d of spec.dataDisks ?? []) {
        const file = dataDiskPath(p, d.index);
        // Made once: an existing one holds the guest's data, kept across stops and restarts.
        if (existsSync(file)) continue;
        rev.add(() => rmSync(file, { force: true }));
        await this.createDataDisk(file, d.sizeBytes);
      }
      // QEMU appends to an existing log (logappend=on) and keeps its mode: make it ours first.
      closeSync(openSync(p.consoleLog, 'a', 0o600));
      chmodSync(p.consoleLog, 0o600);
      this.removeRuntimeFiles(p);
      // Emptied (the last run's states must not speak for this one) and made ours before QEMU
      // opens it, like the console log.
      closeSync(openSync(p.runLog, 'w', 0o600));
      chmodSync(p.runLog, 0o600);
      // Before the launch: a QEMU that dies at any point after it is a crash, not a poweroff.
      // A failed start keeps it (`exited`): a restart after a crash that fails is retried
      // with the backoff, not forgotten; a first start is retried anyway (a new generation).
      writeFileAtomic(p.powerState, 'running\n', 0o600);
      // A warm clone's identity (its MAC, a random seed) for fw_cfg: a private file, not argv.
      if (spec.identity !== undefined) writeFileAtomic(p.identity, spec.identity, 0o600);
      else rmSync(p.identity, { force: true });
      // If anything after the launch fails, the process must not outlive the failed start.
      rev.add(() => this.killNow(spec.id));
      const t0 = Date.now();
      // The active layer's real path, never the link (qemu-snapshots.ts says why).
      await this.opts.exec.run(this.qemu, qemuArgs(spec, { ...p, disk: activeDisk(p) }, this.opts.accel, incoming), { timeoutMs: 60_000 });
      const pid = this.livePid(spec.id);
      if (pid === undefined) throw new Error(`qemu for ${spec.id} exited right after starting; see ${p.consoleLog}`);
      // The sockets and pidfile are QEMU's, made with its umask (027): group access off too.
      for (const f of [p.qmpSock, p.consoleSock, p.pidFile]) if (existsSync(f)) chmodSync(f, 0o600);
      await loaded?.(t0);
      if (incoming && restored !== undefined) writeFileAtomic(`${p.dir}/restore-gen`, `${restored}\n`, 0o600);
      this.log(`started ${spec.id} pid ${pid} (${this.opts.accel}) in ${Date.now() - t0} ms`);
      rev.done();
    } catch (e) {
      await rev.revert();
      throw e;
    }
  }

  async stop(id: string, timeoutMs: number): Promise<void> {
    const p = this.paths(id);
    // This end is the agent's doing: neither a crash nor the guest's choice.
    rmSync(p.powerState, { force: true });
    const pid = this.livePid(id);
    if (pid === undefined) {
      this.removeRuntimeFiles(p);
      return;
    }
    // ACPI power button: the guest OS shuts down cleanly if it listens; QEMU (-no-shutdown)
    // then waits in run state `shutdown` for the quit below.
    const down = await this.powerdown(p, id, pid, timeoutMs);
    if (!down) this.log(`stop ${id}: guest not shut down within ${timeoutMs} ms, quitting`);
    if (this.livePid(id) === pid) {
      // quit lets QEMU flush its own disk state; SIGKILL only when QMP is unresponsive.
      const quit = await this.qmp(p, 'quit', 1000);
      if (!(quit && (await this.waitGone(id, pid, 1000)))) {
        this.killNow(id);
        if (!(await this.waitGone(id, pid, 5000))) throw new Error(`qemu ${pid} for ${id} survived SIGKILL`);
      }
    }
    this.removeRuntimeFiles(p);
    this.log(`stopped ${id}`);
  }

  async reap(): Promise<void> {
    for (const { id, running, pid } of await this.list()) {
      if (!running) continue;
      const p = this.paths(id);
      if (this.loggedRunState(p) === 'running') continue;
      const status = await this.status(p, 1000);
      if (status === 'shutdown') {
        // The record first: an agent that dies before the quit finds the VM still in `shutdown`, or the record.
        writeFileAtomic(p.powerState, 'poweroff\n', 0o600);
        this.log(`${id}: the guest powered off, quitting its qemu`);
        if (!((await this.qmp(p, 'quit', 1000)) && (await this.waitGone(id, pid!, 2000)))) this.killNow(id);
      } else if (status !== undefined && LEFT_PAUSED.has(status)) {
        await this.recoverPaused(id, p, pid!, status);
      }
    }
  }

  /**
   * A QEMU left paused by an agent that died in the middle of its work (issue 16): nothing
   * Butter does leaves a guest paused for longer than one operation of one agent, and the
   * agent runs them one at a time, so a paused QEMU seen here is one that no one will finish.
   * - Launched for a resume (`-incoming`) and its guest never ran there (the run log shows no
   *   `running`): the agent died between the launch and `cont`. It is ended (its guest has
   *   done nothing, its disk is as the state left it) and the state, which goes only after
   *   `cont`, is still there: the plan resumes it again, from the start, like any suspended VM
   *   (a restore from a memory snapshot starts over from the snapshot, its generation being
   *   recorded only after `cont`).
   * - Otherwise its guest ran and was stopped inside a snapshot (`stop` .. `cont`, or a memory
   *   snapshot's migration): a migration still under way is cancelled and the guest continued,
   *   which is what the snapshot would have done at its end.
   */
  private async recoverPaused(id: string, p: VmPaths, pid: number, status: string): Promise<void> {
    const neverRan = this.launchedIncoming(pid) && (status === 'inmigrate' || status === 'prelaunch' || !this.everRan(p));
    if (neverRan) {
      this.log(`${id}: its resume was left unfinished (qemu ${status}), ending that qemu to resume again`);
      // The agent's own end, not a crash.
      rmSync(p.powerState, { force: true });
      if (!((await this.qmp(p, 'quit', 1000)) && (await this.waitGone(id, pid, 2000)))) {
        this.killNow(id);
        await this.waitGone(id, pid, 5000);
      }
      this.removeRuntimeFiles(p);
      return;
    }
    this.log(`${id}: its qemu was left ${status} by an unfinished snapshot, continuing it`);
    if (status !== 'paused') await this.qmp(p, 'migrate_cancel', 1000);
    await this.qmp(p, 'cont', 1000);
    // A resume's own last step, if this was one whose start the log did not show: its state is spent.
    if (this.launchedIncoming(pid)) rmSync(p.memoryState, { force: true });
  }

  /** Whether this QEMU process was launched to receive a saved state (`-incoming`). */
  private launchedIncoming(pid: number): boolean {
    try {
      return readFileSync(`${this.procRoot}/${pid}/cmdline`, 'utf8').split('\0').includes('-incoming');
    } catch {
      return false;
    }
  }

  /** Whether the run log (emptied at each launch) shows the guest running in this QEMU; unknown without a log counts as yes. */
  private everRan(p: VmPaths): boolean {
    let text: string;
    try {
      text = readFileSync(p.runLog, 'utf8');
    } catch {
      return true;
    }
    for (const m of text.matchAll(RUNSTATE_LINE)) if (m[1] === 'running') return true;
    return text.length === 0;
  }

  async destroy(id: string): Promise<void> {
    const p = this.paths(id);
    await this.stop(id, 2000);
    rmSync(p.dir, { recursive: true, force: true });
    this.log(`destroyed ${id}`);
  }

  async list(): Promise<ObservedVm[]> {
    let ids: string[];
    try {
      ids = readdirSync(`${this.stateDir}/vms`, { withFileTypes: true })
        .filter((d) => d.isDirectory() && ID_RE.test(d.name))
        .map((d) => d.name);
    } catch {
      return [];
    }
    return ids.sort().map((id) => {
      const pid = this.livePid(id);
      if (pid !== undefined) return { id, running: true, pid };
      const exit = this.exitOf(id);
      const suspended = existsSync(vmPaths(this.stateDir, id).memoryState) ? { suspended: true } : {};
      return exit === undefined ? { id, running: false, ...suspended } : { id, running: false, exit, ...suspended };
    });
  }

  /** How the last run of a VM that is not running ended (see the top of this file). */
  private exitOf(id: string): VmExit | undefined {
    const p = vmPaths(this.stateDir, id);
    let state: string;
    try {
      state = readFileSync(p.powerState, 'utf8').trim();
    } catch {
      return undefined;
    }
    if (state === 'poweroff') return 'poweroff';
    if (state === 'running') return existsSync(p.pidFile) ? 'killed' : 'exited';
    return undefined;
  }

  /**
   * The run state QEMU last logged (`running`, `shutdown`, ...), or undefined when it logged
   * none. Only the tail is read: the file also takes QEMU's stderr, which is small but unbounded.
   */
  private loggedRunState(p: VmPaths): string | undefined {
    let tail: string;
    try {
      const fd = openSync(p.runLog, 'r');
      try {
        const size = fstatSync(fd).size;
        const buf = Buffer.alloc(Math.min(size, RUN_LOG_TAIL));
        readSync(fd, buf, 0, buf.length, size - buf.length);
        tail = buf.toString('utf8');
      } finally {
        closeSync(fd);
      }
    } catch {
      return undefined;
    }
    let state: string | undefined;
    for (const m of tail.matchAll(RUNSTATE_LINE)) state = m[1];
    return state;
  }

  private paths(id: string): VmPaths {
    if (!ID_RE.test(id)) throw new Error(`invalid VM id: ${JSON.stringify(id)}`);
    return vmPaths(this.stateDir, id);
  }

  /** A resume of a warm clone that has not booted cold since: the argv it was started with (its template's command line, its identity). */
  private withWarmArgs(spec: VmSpec): VmSpec {
    let w: { cmdline: string | null; identity: string; memoryFile?: string };
    try {
      w = JSON.parse(readFileSync(this.warmArgsFile(spec.id), 'utf8')) as typeof w;
    } catch {
      return spec;
    }
    const boot = spec.boot.kind === 'kernel' && w.cmdline !== null ? { ...spec.boot, cmdline: w.cmdline } : spec.boot;
    return { ...spec, boot, identity: w.identity, ...(w.memoryFile ? { memoryFile: { path: w.memoryFile, shared: false } } : {}) };
  }

  /** The restore generation this VM's disk was last restored at (0: never). */
  private restoredGen(p: VmPaths): number {
    try {
      return Number.parseInt(readFileSync(`${p.dir}/restore-gen`, 'utf8'), 10) || 0;
    } catch {
      return 0;
    }
  }

  /** What a layered disk's first layer stands on: a clone's snapshot (of another VM here), the image, or nothing. */
  private baseOf(spec: VmSpec): { file: string; format: 'qcow2' | 'raw' } | undefined {
    if (spec.warmBase) return { file: this.warmFile(spec.warmBase, 'disk.qcow2'), format: 'qcow2' };
    if (spec.base) {
      const link = snapshotLink(this.paths(spec.base.vm), spec.base.snapshot);
      if (!existsSync(link)) throw new Error(`snapshot ${spec.base.snapshot} of vm ${spec.base.vm} is not on this host`);
      return { file: realpathSync(link), format: 'qcow2' };
    }
    if (spec.baseFile) return { file: resolve(spec.baseFile.file), format: spec.baseFile.format };
    const b = spec.boot;
    if (b.kind === 'disk') return { file: resolve(b.disk), format: b.format };
    if (b.rootDisk !== undefined) return { file: resolve(b.rootDisk), format: b.rootFormat ?? 'raw' };
    return undefined;
  }

  /** Overlay on the image (so the image stays shared and read-only) or a blank disk. */
  private async createDisk(spec: VmSpec, p: VmPaths): Promise<void> {
    const b = spec.boot;
    const base =
      b.kind === 'disk'
        ? { file: b.disk, format: b.format }
        : b.rootDisk !== undefined
          ? // Never guessed from the name: the format is the one the image was inspected in (raw by default, as in vmSpec).
            { file: b.rootDisk, format: b.rootFormat ?? 'raw' }
          : undefined;
    if (base === undefined) {
      await this.opts.exec.run('qemu-img', ['create', '-f', 'qcow2', p.disk, String(spec.diskBytes)]);
      return;
    }
    const file = resolve(base.file);
    // Never smaller than the image: a short overlay would cut off the end of the guest's disk.
    const size = Math.max(spec.diskBytes, await this.virtualSize(file, base.format));
    await this.opts.exec.run('qemu-img', ['create', '-f', 'qcow2', '-F', base.format, '-b', file, p.disk, String(size)]);
  }

  /**
   * An empty (sparse) qcow2, written beside its place and renamed into it once whole: a start
   * that dies inside `qemu-img create` (the agent killed, the host down) leaves only a `.tmp`,
   * which the next start replaces, never a torn disk that it would take for made.
   */
  private async createDataDisk(file: string, sizeBytes: number): Promise<void> {
    const tmp = `${file}.tmp`;
    rmSync(tmp, { force: true });
    try {
      await this.opts.exec.run('qemu-img', ['create', '-f', 'qcow2', tmp, String(sizeBytes)]);
      chmodSync(tmp, 0o600); // qemu-img creates it with the umask's mode
      const fd = openSync(tmp, 'r');
      try {
        fsyncSync(fd); // on disk before its name says it is whole
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, file);
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  private async growDisk(spec: VmSpec, p: VmPaths): Promise<void> {
    if ((await this.virtualSize(p.disk, 'qcow2')) >= spec.diskBytes) return;
    await this.opts.exec.run('qemu-img', ['resize', '-f', 'qcow2', p.disk, String(spec.diskBytes)]);
  }

  private async virtualSize(file: string, format: string): Promise<number> {
    const r = await this.opts.exec.run('qemu-img', ['info', '--output=json', '-f', format, file]);
    const size = (JSON.parse(r.stdout) as { 'virtual-size'?: unknown })['virtual-size'];
    if (typeof size !== 'number') throw new Error(`qemu-img info ${file}: no virtual-size`);
    return size;
  }

  /**
   * The pid from the pidfile, if that process is alive and is this VM's QEMU for this state
   * dir. A recycled pid, a zombie (empty cmdline) or another agent's VM of the same id is not.
   */
  private livePid(id: string): number | undefined {
    const p = vmPaths(this.stateDir, id);
    let pid: number;
    try {
      pid = Number.parseInt(readFileSync(p.pidFile, 'utf8').trim(), 10);
    } catch {
      return undefined;
    }
    if (!(pid > 0)) return undefined;
    let argv: string[];
    try {
      argv = readFileSync(`${this.procRoot}/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      return undefined;
    }
    const after = (flag: string) => {
      const i = argv.indexOf(flag);
      return i >= 0 ? argv[i + 1] : undefined;
    };
    return after('-name') === processMarker(id) && after('-pidfile') === p.pidFile ? pid : undefined;
  }

  private async waitGone(id: string, pid: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.livePid(id) !== pid) return true;
      if (Date.now() >= deadline) return false;
      await sleep(POLL_MS);
    }
  }

  private killNow(id: string): void {
    const pid = this.livePid(id);
    if (pid === undefined) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }

  /**
   * Presses the ACPI power button and waits until the guest has shut down (QEMU gone, or in
   * run state `shutdown`); false when the press was not delivered or the guest did not react.
   */
  private async powerdown(p: VmPaths, id: string, pid: number, timeoutMs: number): Promise<boolean> {
    let client: QmpClient | undefined;
    const deadline = Date.now() + timeoutMs;
    try {
      client = await QmpClient.connect(p.qmpSock, Math.min(timeoutMs, 2000));
      await withTimeout(client.execute('system_powerdown'), Math.min(timeoutMs, 2000));
      for (;;) {
        if (this.livePid(id) !== pid) return true;
        const st = (await withTimeout(client.execute('query-status'), 1000)) as { status?: string } | undefined;
        if (st?.status === 'shutdown') return true;
        if (Date.now() >= deadline) return false;
        await sleep(POLL_MS);
      }
    } catch (e) {
      if (this.livePid(id) !== pid) return true;
      this.log(`qmp powerdown on ${p.qmpSock}: ${(e as Error).message}`);
      return false;
    } finally {
      client?.close();
    }
  }

  /** QEMU's run state (`running`, `paused`, `shutdown`, ...), or undefined when QMP does not answer in time. */
  private async status(p: VmPaths, timeoutMs: number): Promise<string | undefined> {
    let client: QmpClient | undefined;
    try {
      client = await QmpClient.connect(p.qmpSock, timeoutMs);
      const st = (await withTimeout(client.execute('query-status'), timeoutMs)) as { status?: string } | undefined;
      return st?.status;
    } catch (e) {
      this.log(`qmp query-status on ${p.qmpSock}: ${(e as Error).message}`);
      return undefined;
    } finally {
      client?.close();
    }
  }

  /** Best effort: false (dead or wedged QMP) just means the caller escalates. */
  private async qmp(p: VmPaths, command: string, timeoutMs: number): Promise<boolean> {
    let client: QmpClient | undefined;
    try {
      client = await QmpClient.connect(p.qmpSock, timeoutMs);
      const ac = new AbortController();
      const answered = await Promise.race([
        client.execute(command).then(() => true),
        sleep(timeoutMs, false, { signal: ac.signal }),
      ]).finally(() => ac.abort());
      if (!answered) this.log(`qmp ${command} on ${p.qmpSock}: no answer within ${timeoutMs} ms`);
      return answered;
    } catch (e) {
      // QEMU may close the socket before answering `quit`; that is the success we wanted.
      const msg = (e as Error).message;
      if (command === 'quit' && /closed/.test(msg)) return true;
      this.log(`qmp ${command} on ${p.qmpSock}: ${msg}`);
      return false;
    } finally {
      client?.close();
    }
  }

  private removeRuntimeFiles(p: VmPaths): void {
    // (Not power-state: it must outlive the process it describes.)
    for (const f of [p.pidFile, p.qmpSock, p.consoleSock]) rmSync(f, { force: true });
  }

  private log(msg: string): void {
    this.opts.log?.(msg);
  }
}

/** The bytes a (sparse) file holds on disk. */
function allocatedBytes(file: string): number {
  return statSync(file).blocks * 512;
}

/** Flushes a file to disk; its size. */
function fsyncFile(file: string): number {
  const fd = openSync(file, 'r');
  try {
    fsyncSync(fd);
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
}
