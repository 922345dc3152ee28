/** Overview: a stub, replaced by its page. */
import type { PageProps } from '../app/context.ts';

export function OverviewPage(_props: PageProps) {
  return (
    <section>
      <h1>Overview</h1>
      <p>Not written yet.</p>
    </section>
  );
}
