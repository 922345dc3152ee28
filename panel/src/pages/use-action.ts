/**
 * An action's state for a form or button: busy, its error (for the form to show next to the
 * field it names), its result. Data loading is app/use-load.ts.
 */
import { useState } from 'preact/hooks';

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
