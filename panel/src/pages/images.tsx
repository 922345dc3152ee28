/** Images: a stub, replaced by its page. */
import type { PageProps } from '../app/context.ts';

export function ImagesPage(_props: PageProps) {
  return (
    <section>
      <h1>Images</h1>
      <p>Not written yet.</p>
    </section>
  );
}
