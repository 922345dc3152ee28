/**
 * Hash routing (`#/vms/web`): the control plane needs no route per page, a reload keeps the
 * page, and links are plain `<a href="#/…">` (keyboard and screen readers know them).
 */
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  /** The page's name, the first segment: `vms` in `#/vms/web` (default `overview`). */
  page: string;
  /** The rest, decoded: `['web']`. */
  rest: string[];
}

export function parseHash(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] ?? 'overview', rest: parts.slice(1) };
}

/** The link to a page: `href('vms', 'web')` is `#/vms/web`. */
export function href(page: string, ...rest: string[]): string {
  return `#/${[page, ...rest].map(encodeURIComponent).join('/')}`;
}

export function navigate(page: string, ...rest: string[]): void {
  location.hash = href(page, ...rest);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseHash(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}
