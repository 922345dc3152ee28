/** `butter test DIR [deploy|check|cleanup|run]`: the blueprint tester (cli/tester/runner.ts). */
import type { Command } from 'commander';
import { connect } from '../../sdk/connect.ts';
import { loadConfig, UsageError } from '../config.ts';
import { printJson } from '../output.ts';
import { BlueprintTester, TEST_COMMANDS, type TestCommand, type TestReport } from '../tester/runner.ts';

function human(r: TestReport): void {
  for (const s of r.steps) process.stderr.write(`  ${s.skipped ? 'skip' : s.ok ? 'ok  ' : 'FAIL'}  ${s.step} (${s.seconds} s)${s.message ? `: ${s.message}` : ''}\n`);
  const what = `${r.command} ${r.dir}`;
  process.stdout.write(r.ok ? `PASS ${what}\n` : `FAIL ${what}: ${r.error ?? `exit ${r.exitCode}`}\n`);
}

export function testCommands(program: Command): void {
  program
    .command('test <dir> [command]')
    .description('test a blueprint: deploy DIR/blueprint.yml with its fixture (DIR/blueprint-fixture.ts or .js) in a throwaway network, verify, clean up. COMMAND: deploy, check, cleanup or run (default: all three)')
    .option('--timeout <seconds>', 'how long the service under test may take to run', '600')
    .option('--no-path-verify', 'after verify, do not check the data plane against the paths (`path verify`)')
    .option('--json', 'print the report as JSON')
    .addHelpText('after', '\nExit codes: 0 passed, 1 the test failed, 2 bad usage, 3 the deployment failed, 4 the cleanup failed (something may be left), 130/143 interrupted (after tearing down).')
    .action(async (dir: string, command: string | undefined, o: { timeout: string; pathVerify: boolean; json?: boolean }) => {
      const cmd = (command ?? 'run') as TestCommand;
      if (!TEST_COMMANDS.includes(cmd)) throw new UsageError(`command: must be one of ${TEST_COMMANDS.join(', ')}, got ${JSON.stringify(command)}`);
      if (!/^\d+$/.test(o.timeout)) throw new UsageError(`timeout: must be a whole number of seconds, got ${JSON.stringify(o.timeout)}`);
      if (!loadConfig()) throw new UsageError('not logged in: run `butter login URL --token TOKEN` or set BUTTER_URL and BUTTER_TOKEN');
      const report = await new BlueprintTester(connect(), { dir, command: cmd, serviceTimeoutMs: Number(o.timeout) * 1000, pathVerify: o.pathVerify }).run();
      if (o.json) printJson(report);
      else human(report);
      // A fixture's step abandoned at a signal (or one that left a timer behind) may still hold
      // the event loop; the test is over and torn down, so the process ends here, once stdout
      // has taken the report.
      await new Promise<void>((r) => process.stdout.write('', () => r()));
      process.exit(report.exitCode);
    });
}
