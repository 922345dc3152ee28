/**
 * The frame around every page: navigation (a row of links, wrapping at phone width), who is
 * signed in, sign out, and the current page from the route.
 */
import { useContext } from 'preact/hooks';
import { PanelContext, type PageProps } from './context.ts';
import { useEvents } from './events.ts';
import { PAGES } from './pages.ts';
import { roleCan } from './roles.ts';
import { href, useRoute } from './router.ts';

export function Shell({ onSignOut }: { onSignOut: () => void }) {
  const { client, role } = useContext(PanelContext);
  const route = useRoute();
  const entry = PAGES.find((p) => p.id === route.page);
  const props: PageProps = { client, role, can: (need) => roleCan(role, need), useEvents, route };
  const Page = entry?.component;
  return (
    <div class="shell">
      <header class="top">
        <a class="brand" href={href('overview')}>
          Butter
        </a>
        <nav aria-label="Pages">
          {PAGES.map((p) => (
            <a href={href(p.id)} aria-current={p.id === route.page ? 'page' : undefined}>
              {p.title}
            </a>
          ))}
        </nav>
        <div class="who">
          <span class="role" data-testid="role">
            {role}
          </span>
          <button type="button" class="small" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" class="page">
        {Page ? (
          <Page key={entry.id} {...props} />
        ) : (
          <section>
            <h1>Not found</h1>
            <p>
              No page <code>{route.page}</code>. <a href={href('overview')}>Overview</a>
            </p>
          </section>
        )}
      </main>
    </div>
  );
}
