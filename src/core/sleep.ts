/** sleep: waiting that a shutdown cuts short. */

/**
 * sleep resolves after `ms`, or as soon as `signal` aborts (at once if it
 * already has). It never rejects: a loop that sleeps between attempts checks
 * whether it was stopped after waking.
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
