// A keyed work queue with client-go's semantics:
// - a key waiting in the queue is there once, however often it is added;
// - a key added while a worker processes it is processed again afterwards;
// - no two workers ever hold the same key;
// - delayed adds (addAfter) and rate-limited re-adds (addRateLimited).
import { type Clock, realClock } from "./clock.ts";
import type { SdkMetrics } from "./metrics.ts";
import { defaultControllerRateLimiter, type RateLimiter } from "./ratelimit.ts";

export interface WorkQueueOptions<K> {
  name?: string;
  rateLimiter?: RateLimiter<K>;
  clock?: Clock;
  metrics?: SdkMetrics;
}

export class WorkQueue<K = string> {
  readonly name: string;
  private readonly queue: K[] = [];
  private head = 0;
  private readonly dirty = new Set<K>();
  private readonly processing = new Set<K>();
  private readonly addedAt = new Map<K, number>();
  private readonly waiting = new Map<K, { at: number; timer: unknown }>();
  private readonly getters: Array<(k: K | undefined) => void> = [];
  private readonly rateLimiter: RateLimiter<K>;
  private readonly clock: Clock;
  private readonly metrics: SdkMetrics | undefined;
  private shuttingDown = false;
  private drainWaiters: Array<() => void> = [];

  constructor(opts: WorkQueueOptions<K> = {}) {
    this.name = opts.name ?? "queue";
    this.clock = opts.clock ?? realClock;
    this.rateLimiter = opts.rateLimiter ?? defaultControllerRateLimiter<K>(this.clock);
    this.metrics = opts.metrics;
  }

  /** Keys waiting to be taken (not counting delayed ones or those being processed). */
  len(): number {
    return this.queue.length - this.head;
  }

  /** Keys held by workers now. */
  inFlight(): number {
    return this.processing.size;
  }

  /** Keys scheduled for later by addAfter. */
  delayed(): number {
    return this.waiting.size;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  add(key: K): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.metrics?.queueAdds.inc({ queue: this.name });
    this.dirty.add(key);
    this.addedAt.set(key, this.clock.now());
    if (this.processing.has(key)) return;
    this.push(key);
  }

  private push(key: K): void {
    const getter = this.getters.shift();
    if (getter) {
      this.take(key);
      getter(key);
      return;
    }
    this.queue.push(key);
    this.metrics?.queueDepth.set({ queue: this.name }, this.len());
  }

  private take(key: K): void {
    this.processing.add(key);
    this.dirty.delete(key);
    const at = this.addedAt.get(key);
    this.addedAt.delete(key);
    if (at !== undefined) this.metrics?.queueLatency.observe({ queue: this.name }, (this.clock.now() - at) / 1000);
  }

  /** Adds `key` after `delayMs`; an earlier pending addAfter of the same key wins. */
  addAfter(key: K, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = this.clock.now() + delayMs;
    const prev = this.waiting.get(key);
    if (prev && prev.at <= at) return;
    if (prev) this.clock.clearTimeout(prev.timer);
    const timer = this.clock.setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, delayMs);
    this.waiting.set(key, { at, timer });
  }

  /** Adds `key` after the rate limiter's delay (grows with each failure of the key). */
  addRateLimited(key: K): number {
    const delay = this.rateLimiter.when(key);
    this.metrics?.queueRetries.inc({ queue: this.name });
    this.addAfter(key, delay);
    return delay;
  }

  /** `key` succeeded: reset its backoff. */
  forget(key: K): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: K): number {
    return this.rateLimiter.numRequeues(key);
  }

  /** The next key to process; undefined once the queue shuts down. Call done(key) after. */
  get(): Promise<K | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    if (this.len() > 0) {
      const key = this.queue[this.head++] as K;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      this.take(key);
      this.metrics?.queueDepth.set({ queue: this.name }, this.len());
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** A worker finished `key`; if it was added meanwhile it goes back in the queue. */
  done(key: K): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) this.push(key);
    if (this.processing.size === 0) for (const w of this.drainWaiters.splice(0)) w();
  }

  /** Stops handing out keys; pending get() calls resolve with undefined. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.waiting.values()) this.clock.clearTimeout(timer);
    this.waiting.clear();
    for (const g of this.getters.splice(0)) g(undefined);
  }

  /** Shuts down and resolves once no key is being processed. */
  shutDownWithDrain(): Promise<void> {
    this.shutDown();
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }
}
