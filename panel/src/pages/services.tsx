/** Services: a stub, replaced by its page. */
import type { PageProps } from '../app/context.ts';

export function ServicesPage(_props: PageProps) {
  return (
    <section>
      <h1>Services</h1>
      <p>Not written yet.</p>
    </section>
  );
}
