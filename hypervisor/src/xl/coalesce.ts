// One xl reader at a time, shared: on an emulated or busy dom0 an `xl list`
// takes over a second and each one forks the agent, so callers that arrive
// while one runs share the next run instead of starting their own. The next
// run starts only after the current one ends, so every caller sees state read
// after it asked (a caller that just created a domain finds it).

/** Wraps `fn` so that at most one run is in flight and callers arriving meanwhile share the next. */
export function coalesced<T>(fn: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  let queued: Promise<T> | undefined;
  const start = (): Promise<T> => {
    const p = fn();
    inFlight = p;
    // Cleared only when nothing is queued behind it: the queued run replaces it as in flight.
    const clear = () => {
      if (inFlight === p && !queued) inFlight = undefined;
    };
    p.then(clear, clear);
    return p;
  };
  return () => {
    if (!inFlight) return start();
    if (!queued) {
      queued = inFlight
        .then(
          () => undefined,
          () => undefined,
        )
        .then(() => {
          queued = undefined;
          return start();
        });
    }
    return queued;
  };
}
