/**
 * Runs every command inside a named network namespace, so an adapter written against `Exec`
 * can be pointed at a throwaway namespace in host tests without knowing about it.
 *
 * `nsenter --net`, not `ip netns exec`: the latter also gives each command a private mount
 * namespace, in which a namespace the command adds (`ip netns add`, as the network host does
 * for gateways) is mounted where no later command can see it.
 */
import type { Exec, ExecOptions, ExecResult } from './exec.ts';

export class NetnsExec implements Exec {
  constructor(
    private readonly inner: Exec,
    readonly netns: string,
  ) {
    // The name ends up as a file under /run/netns: keep it a plain word.
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(netns) || netns.startsWith('.')) {
      throw new Error(`bad network namespace name ${JSON.stringify(netns)}`);
    }
  }

  run(cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return this.inner.run('nsenter', [`--net=/run/netns/${this.netns}`, cmd, ...args], opts);
  }
}
