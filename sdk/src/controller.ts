// The level-triggered core, in the manner of controller-runtime: events only
// enqueue keys; workers take keys from a work queue and call reconcile(key),
// which reads the current state and makes the world match it. The result
// says when to come back; errors are retried with per-key backoff.
import { errorMessage, PermanentError, TemporaryError } from "./errors.ts";
import type { Informer, InformerEvent } from "./informer.ts";
import { defaultLogger, type Logger } from "./log.ts";
import { defaultMetrics, type SdkMetrics } from "./metrics.ts";
import type { RateLimiter } from "./ratelimit.ts";
import { type KubeObject, objectKey } from "./resource.ts";
import { WorkQueue } from "./workqueue.ts";

/** What a reconcile asks for: nothing (done), or to run again after a delay. */
export type ReconcileResult = undefined | { requeueAfterMs: number } | { requeue: true };

export interface ReconcileContext {
  /** Aborts when the controller stops (shutdown, lost leadership). */
  signal: AbortSignal;
  log: Logger;
  /** How many times this key failed in a row. */
  retries: number;
}

export type ReconcileFn = (key: string, ctx: ReconcileContext) => Promise<ReconcileResult>;

export interface ControllerOptions {
  name: string;
  reconcile: ReconcileFn;
  /** Workers reconciling at once (different keys). Default 4. */
  concurrency?: number;
  rateLimiter?: RateLimiter<string>;
  /** Called once for a PermanentError (report it: condition, event); the key is not retried. */
  onPermanentError?: (key: string, err: PermanentError) => Promise<void> | void;
  logger?: Logger;
  metrics?: SdkMetrics;
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue<string>;
  private readonly opts: ControllerOptions;
  private readonly log: Logger;
  private readonly metrics: SdkMetrics;
  private readonly unsubscribe: Array<() => void> = [];
  private abort = new AbortController();
  private workers: Promise<void>[] = [];
  private started = false;

  constructor(opts: ControllerOptions) {
    this.name = opts.name;
    this.opts = opts;
    this.log = (opts.logger ?? defaultLogger()).child({ controller: opts.name });
    this.metrics = opts.metrics ?? defaultMetrics();
    this.queue = new WorkQueue<string>({ name: opts.name, rateLimiter: opts.rateLimiter, metrics: this.metrics });
  }

  /**
   * Enqueues keys for an informer's events: by default the object's own key;
   * `map` turns an event into the keys of other objects (owner, bound domain...).
   */
  watch<T extends KubeObject>(
    informer: Informer<T>,
    map?: (ev: InformerEvent<T>) => string[] | string | undefined,
  ): this {
    this.unsubscribe.push(
      informer.addHandler((ev) => {
        const keys = map ? map(ev) : objectKey(ev.obj);
        if (keys === undefined) return;
        for (const k of Array.isArray(keys) ? keys : [keys]) this.queue.add(k);
      }),
    );
    return this;
  }

  enqueue(key: string, afterMs = 0): void {
    this.queue.addAfter(key, afterMs);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    const n = this.opts.concurrency ?? 4;
    for (let i = 0; i < n; i++) this.workers.push(this.worker());
    this.log.debug({ workers: n }, "controller started");
  }

  /** Stops taking keys and waits up to `deadlineMs` for reconciles in flight; then aborts them. */
  async stop(deadlineMs = 30_000): Promise<void> {
    for (const u of this.unsubscribe.splice(0)) u();
    const drained = this.queue.shutDownWithDrain();
    const timer = setTimeout(() => this.abort.abort(new Error("controller stop deadline passed")), deadlineMs);
    await drained;
    clearTimeout(timer);
    this.abort.abort();
    await Promise.all(this.workers);
    this.workers = [];
    this.started = false;
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      await this.process(key);
    }
  }

  private async process(key: string): Promise<void> {
    const t0 = performance.now();
    const retries = this.queue.numRequeues(key);
    const log = this.log.child({ key });
    let result = "success";
    try {
      const res = await this.opts.reconcile(key, { signal: this.abort.signal, log, retries });
      this.queue.forget(key);
      if (res && "requeueAfterMs" in res) {
        this.queue.addAfter(key, res.requeueAfterMs);
        result = "requeue_after";
      } else if (res && "requeue" in res) {
        this.queue.addRateLimited(key);
        result = "requeue";
      }
    } catch (err) {
      if (err instanceof PermanentError) {
        result = "permanent_error";
        this.queue.forget(key);
        this.metrics.reconcileErrors.inc({ controller: this.name, kind: "permanent" });
        log.error({ err: err.message, reason: err.reason }, "reconcile failed permanently");
        try {
          await this.opts.onPermanentError?.(key, err);
        } catch (e) {
          log.error({ err: errorMessage(e) }, "reporting a permanent error failed");
          this.queue.addRateLimited(key);
        }
      } else if (err instanceof TemporaryError) {
        result = "temporary_error";
        this.metrics.reconcileErrors.inc({ controller: this.name, kind: "temporary" });
        const delay = err.delayMs ?? this.queue.addRateLimited(key);
        if (err.delayMs !== undefined) this.queue.addAfter(key, err.delayMs);
        log.info({ err: err.message, retryInMs: Math.round(delay) }, "reconcile will be retried");
      } else {
        result = "error";
        this.metrics.reconcileErrors.inc({ controller: this.name, kind: "error" });
        const delay = this.queue.addRateLimited(key);
        log.warn({ err: errorMessage(err), retries, retryInMs: Math.round(delay) }, "reconcile failed");
      }
    } finally {
      this.queue.done(key);
      this.metrics.reconcileDuration.observe({ controller: this.name, result }, (performance.now() - t0) / 1000);
    }
  }
}
