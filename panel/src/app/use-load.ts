/**
 * Data for a page: loads once, again on `reload()` (from a live event), and keeps the last
 * good value while a reload runs. Reloads that overlap coalesce: one runs, one more follows.
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  reload: () => void;
  /** Replaces the data by hand (a live patch), without a fetch. */
  set: (fn: (old: T | undefined) => T | undefined) => void;
}

export function useLoad<T>(load: () => Promise<T>, deps: unknown[] = []): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const state = useRef({ running: false, again: false, alive: true });
  const loadRef = useRef(load);
  loadRef.current = load;
  const reload = useCallback(() => {
    const s = state.current;
    if (s.running) {
      s.again = true;
      return;
    }
    s.running = true;
    void (async () => {
      do {
        s.again = false;
        try {
          const v = await loadRef.current();
          if (s.alive) {
            setData(() => v);
            setError(undefined);
          }
        } catch (e) {
          if (s.alive) setError(e);
        }
      } while (s.again && s.alive);
      s.running = false;
    })();
  }, []);
  useEffect(() => {
    state.current.alive = true;
    reload();
    return () => {
      state.current.alive = false;
    };
  }, deps);
  return { data, error, reload, set: (fn) => setData(fn) };
}
