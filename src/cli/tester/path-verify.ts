/**
 * After a fixture's `verify`, the tester checks the throwaway network's data plane against its
 * paths (`POST /v1/networks/{name}/verify`, `butter path verify`): real probes through the real
 * rules on the nodes. Every disagreement fails the test, and so does a node that did not
 * answer for its probes (they prove nothing). The route is an admin's: with another token the
 * check is not made, and the tester reports the step as skipped with the reason, never as a
 * pass; likewise against a control plane that has no such route.
 */
import { ButterError } from '../../sdk/client.ts';
import type { Butter } from '../../sdk/connect.ts';

export type PathVerdict = { checked: true; disagreements: string[]; probed: number } | { checked: false; reason: string };

export async function verifyPaths(client: Butter, network: string): Promise<PathVerdict> {
  let report;
  try {
    report = await client.call('verifyNetwork', { params: { name: network }, query: {} });
  } catch (e) {
    if (e instanceof ButterError && e.status === 403) return { checked: false, reason: `path verify needs an admin token: ${e.message}` };
    if (e instanceof ButterError && e.status === 404 && /^no route /.test(e.message)) return { checked: false, reason: 'this control plane has no path verify' };
    throw e;
  }
  const lines = [
    ...report.disagreements.map((d) => `${d.from} -> ${d.to} ${d.port} (${d.src} -> ${d.dst} on ${d.node}): the paths say ${d.expected}, the data plane ${d.observed} it (${d.because})`),
    ...report.unanswered.map((u) => `node ${u.node} did not answer for ${u.probes} probe(s): ${u.reason}`),
  ];
  return { checked: true, disagreements: lines, probed: report.probed };
}
