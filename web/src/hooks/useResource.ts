/**
 * useResource loads data from the API and keeps it fresh: `poll` decides,
 * from the latest data, how long to wait before loading again (null: don't).
 * A failed refresh keeps the data it had and reports the error beside it.
 * When `deps` change (another deployment), it starts again from nothing.
 */
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { isAbort } from '../api';

export interface Resource<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  /** reload loads now (and restarts polling). */
  reload: () => void;
  /** set replaces the data (when a change answered the new state). */
  set: (data: T) => void;
}

interface State<T> {
  key: string;
  data: T | undefined;
  error: unknown;
  loading: boolean;
}

export function useResource<T>(
  load: (signal: AbortSignal) => Promise<T>,
  deps: readonly unknown[],
  poll?: (data: T | undefined) => number | null,
): Resource<T> {
  const key = JSON.stringify(deps);
  const [state, setState] = useState<State<T>>({ key, data: undefined, error: null, loading: true });
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  const pollRef = useRef(poll);
  const latest = useRef<{ key: string; data: T | undefined }>({ key, data: undefined });
  useLayoutEffect(() => {
    loadRef.current = load;
    pollRef.current = poll;
  });

  useEffect(() => {
    const ctl = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (latest.current.key !== key) latest.current = { key, data: undefined };
    const run = async (): Promise<void> => {
      setState((s) => (s.key === key ? { ...s, loading: true } : { key, data: undefined, error: null, loading: true }));
      try {
        const data = await loadRef.current(ctl.signal);
        if (ctl.signal.aborted) return;
        latest.current = { key, data };
        setState({ key, data, error: null, loading: false });
      } catch (err) {
        if (ctl.signal.aborted || isAbort(err)) return;
        setState((s) => ({ key, data: s.key === key ? s.data : undefined, error: err, loading: false }));
      }
      const wait = pollRef.current?.(latest.current.data) ?? null;
      if (wait !== null && !ctl.signal.aborted) timer = setTimeout(() => void run(), wait);
    };
    void run();
    return () => {
      ctl.abort();
      clearTimeout(timer);
    };
  }, [key, tick]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  const set = useCallback(
    (data: T) => {
      latest.current = { key, data };
      setState((s) => ({ ...s, key, data, error: null }));
    },
    [key],
  );
  const current = state.key === key ? state : { data: undefined, error: null, loading: true };
  return { data: current.data, error: current.error, loading: current.loading, reload, set };
}
