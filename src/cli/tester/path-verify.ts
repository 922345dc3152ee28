/**
 * HOOK (issue 14, `butter path verify`): after a fixture's `verify`, the tester checks the
 * throwaway network's data plane against its paths, and any disagreement fails the test.
 * `path verify` (branch i14-verify) had not landed when the tester was written: until it is
 * wired here, this answers `checked: false` with the reason, which the tester reports as a
 * skipped step (the `--json` report says so too); it never passes a check it did not make.
 * To wire it: call the verify route for `network` and return every disagreement as a line.
 */
import type { Butter } from '../../sdk/connect.ts';

export type PathVerdict = { checked: true; disagreements: string[] } | { checked: false; reason: string };

export async function verifyPaths(_client: Butter, _network: string): Promise<PathVerdict> {
  return { checked: false, reason: 'path verify is not available in this build of Butter' };
}
