// Rate limiters for the work queue, with client-go's defaults: per-item
// exponential backoff from 5 ms to 1000 s, and an overall token bucket of
// 10 per second with a burst of 100; the queue waits for the larger delay.
import { type Clock, realClock } from "./clock.ts";

export interface RateLimiter<K> {
  /** How long to wait before `key` may be processed again. */
  when(key: K): number;
  /** `key` succeeded: forget its failures. */
  forget(key: K): void;
  numRequeues(key: K): number;
}

export class ItemExponentialRateLimiter<K> implements RateLimiter<K> {
  private failures = new Map<K, number>();
  readonly baseMs: number;
  readonly maxMs: number;
  constructor(baseMs = 5, maxMs = 1_000_000) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
  }
  when(key: K): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return Math.min(this.maxMs, this.baseMs * 2 ** n);
  }
  forget(key: K): void {
    this.failures.delete(key);
  }
  numRequeues(key: K): number {
    return this.failures.get(key) ?? 0;
  }
}

/** A token bucket: `ratePerSec` tokens a second, at most `burst` saved up. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  readonly ratePerSec: number;
  readonly burst: number;
  private readonly clock: Clock;
  constructor(ratePerSec: number, burst: number, clock: Clock = realClock) {
    this.ratePerSec = ratePerSec;
    this.burst = burst;
    this.clock = clock;
    this.tokens = burst;
    this.last = clock.now();
  }
  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSec);
    this.last = now;
  }
  /** Takes a token now if one is there. */
  tryTake(): boolean {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }
  /** Reserves a token, possibly in the future; returns the wait in ms. */
  reserve(): number {
    this.refill();
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.ratePerSec) * 1000;
  }
}

export class BucketRateLimiter<K> implements RateLimiter<K> {
  private readonly bucket: TokenBucket;
  constructor(ratePerSec = 10, burst = 100, clock: Clock = realClock) {
    this.bucket = new TokenBucket(ratePerSec, burst, clock);
  }
  when(_key: K): number {
    return this.bucket.reserve();
  }
  forget(_key: K): void {}
  numRequeues(_key: K): number {
    return 0;
  }
}

/** The largest delay of several limiters. */
export class MaxOfRateLimiter<K> implements RateLimiter<K> {
  private readonly limiters: RateLimiter<K>[];
  constructor(...limiters: RateLimiter<K>[]) {
    this.limiters = limiters;
  }
  when(key: K): number {
    return Math.max(...this.limiters.map((l) => l.when(key)));
  }
  forget(key: K): void {
    for (const l of this.limiters) l.forget(key);
  }
  numRequeues(key: K): number {
    return Math.max(...this.limiters.map((l) => l.numRequeues(key)));
  }
}

export function defaultControllerRateLimiter<K>(clock: Clock = realClock): RateLimiter<K> {
  return new MaxOfRateLimiter<K>(
    new ItemExponentialRateLimiter<K>(5, 1_000_000),
    new BucketRateLimiter<K>(10, 100, clock),
  );
}
