/** VMs: a stub, replaced by its page. */
import type { PageProps } from '../app/context.ts';

export function VmsPage(_props: PageProps) {
  return (
    <section>
      <h1>VMs</h1>
      <p>Not written yet.</p>
    </section>
  );
}
