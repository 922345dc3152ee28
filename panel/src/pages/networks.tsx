/** Networks: a stub, replaced by its page. */
import type { PageProps } from '../app/context.ts';

export function NetworksPage(_props: PageProps) {
  return (
    <section>
      <h1>Networks</h1>
      <p>Not written yet.</p>
    </section>
  );
}
