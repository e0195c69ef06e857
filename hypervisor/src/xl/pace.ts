// When the xl driver looks at its domains (`xl list -v`) next. A look costs a
// real dom0 milliseconds and an emulated or busy one over a second, forking
// the agent each time: after a look the driver rests at least four times what
// the look cost, so that looking never takes more than a fifth of dom0's CPU.
// Between looks, xenstored's domain watches (domain-watch.ts) ring when a
// domain is introduced, shuts down, crashes or dies, as libxl itself learns of
// a domain's death: while they work, a look soon after each ring and a resync
// now and then replace the fixed poll.

/** The rest after something that cost `costMs`: four times that, and at least `minMs`. */
export const restAfter = (minMs: number, costMs: number): number => Math.max(minMs, 4 * costMs);

export interface LookPace {
  /** Between looks when nothing rings: the poll interval. */
  pollMs: number;
  /** Between looks while the domain watch runs: only what it cannot see (pause, unpause). */
  resyncMs: number;
  /** After a ring: soon, but not before this. */
  ringMs: number;
}

export interface LookFacts {
  /** When the last look ended, and what it cost. */
  lastEndMs: number;
  lastCostMs: number;
  /** The domain watch is up (it has rung once since it started, as it does when it registers). */
  watching: boolean;
  /** It rang since the last look began. */
  rang: boolean;
  /** Live migrations run on this host: they need dom0's CPU for xl's save or restore and the stream. */
  migrating: boolean;
}

export const DEFAULT_PACE: LookPace = { pollMs: 2000, resyncMs: 30_000, ringMs: 250 };

/** When the next look starts, as a time on the same clock as `lastEndMs`. */
export function nextLookAt(f: LookFacts, p: LookPace = DEFAULT_PACE): number {
  if (f.rang) return f.lastEndMs + restAfter(p.ringMs, f.lastCostMs);
  const base = f.watching ? p.resyncMs : f.migrating ? 5 * p.pollMs : p.pollMs;
  return f.lastEndMs + restAfter(base, f.lastCostMs);
}
