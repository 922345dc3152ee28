/** Audit: a stub, replaced by its page. */
import type { PageProps } from '../app/context.ts';

export function AuditPage(_props: PageProps) {
  return (
    <section>
      <h1>Audit</h1>
      <p>Not written yet.</p>
    </section>
  );
}
