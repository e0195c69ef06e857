// Jittered exponential backoff, as client-go's wait.Backoff: each step
// multiplies the delay by `factor` up to `maxMs`, plus up to `jitter` of it.

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor?: number;
  /** Fraction of the delay added at random (0.5: up to +50%). */
  jitter?: number;
  random?: () => number;
}

export class Backoff {
  private readonly opts: Required<BackoffOptions>;
  private attempt = 0;
  constructor(opts: BackoffOptions) {
    this.opts = { factor: 2, jitter: 0.5, random: Math.random, ...opts };
  }
  /** The delay before the next attempt; grows with each call until reset. */
  next(): number {
    const { initialMs, maxMs, factor, jitter, random } = this.opts;
    const base = Math.min(maxMs, initialMs * factor ** this.attempt);
    this.attempt++;
    return Math.min(maxMs, base * (1 + jitter * random()));
  }
  reset(): void {
    this.attempt = 0;
  }
  get attempts(): number {
    return this.attempt;
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
