/**
 * Two small hooks the pages share: data loaded from the API (loaded again on demand, e.g. when
 * an event says it changed), and an action's state (busy, its error for the form to show
 * next to the field it names, its result).
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  reload(): void;
}

/**
 * `load()` now and on `reload()`; a reload asked for while one runs runs once more after it,
 * so a burst of events costs at most two loads and the last one sees the latest state.
 */
export function useLoaded<T>(load: () => Promise<T>, deps: readonly unknown[]): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const running = useRef(false);
  const again = useRef(false);
  const live = useRef(true);
  const loadRef = useRef(load);
  loadRef.current = load;
  const run = useCallback(async () => {
    if (running.current) {
      again.current = true;
      return;
    }
    running.current = true;
    try {
      do {
        again.current = false;
        try {
          const v = await loadRef.current();
          if (!live.current) return;
          setData(v);
          setError(null);
        } catch (e) {
          if (live.current) setError(e);
        }
      } while (again.current && live.current);
    } finally {
      running.current = false;
    }
  }, []);
  useEffect(() => {
    live.current = true;
    void run();
    return () => {
      live.current = false;
    };
  }, deps);
  return { data, error, reload: () => void run() };
}

export interface Action<T> {
  busy: boolean;
  error: unknown;
  result: T | undefined;
  run(fn: () => Promise<T>): Promise<T | undefined>;
  reset(): void;
}

export function useAction<T = unknown>(): Action<T> {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [result, setResult] = useState<T | undefined>(undefined);
  return {
    busy,
    error,
    result,
    async run(fn) {
      setBusy(true);
      setError(null);
      try {
        const v = await fn();
        setResult(() => v);
        return v;
      } catch (e) {
        setError(e);
        return undefined;
      } finally {
        setBusy(false);
      }
    },
    reset() {
      setError(null);
      setResult(undefined);
    },
  };
}
