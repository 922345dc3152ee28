/** Tokens: a stub, replaced by its page. */
import type { PageProps } from '../app/context.ts';

export function TokensPage(_props: PageProps) {
  return (
    <section>
      <h1>Tokens</h1>
      <p>Not written yet.</p>
    </section>
  );
}
