// kopf-style handler registration on top of the level-triggered core:
// declare what you react to (create, update with field diffs, delete, resume,
// timers, daemons); the framework owns the finalizer, the retries and the
// bookkeeping. What was last handled is kept in an annotation on the object,
// as kopf does, so a restarted operator knows what it already did.
// Handlers must be idempotent: a failed run is retried from the start.
import { Backoff, sleep } from "./backoff.ts";
import type { KubeClient } from "./client.ts";
import { type Condition, markStalled, removeCondition } from "./conditions.ts";
import { Controller } from "./controller.ts";
import { diff, type FieldChange, touches } from "./diff.ts";
import { errorMessage, PermanentError } from "./errors.ts";
import type { EventRecorder } from "./events.ts";
import { addFinalizer, hasFinalizer, removeFinalizer } from "./finalizers.ts";
import type { Informer } from "./informer.ts";
import { defaultLogger, type Logger } from "./log.ts";
import type { SdkMetrics } from "./metrics.ts";
import { type KubeObject, objectKey, type Resource } from "./resource.ts";

export interface HandlerContext<T extends KubeObject> {
  obj: T;
  /** For update handlers: the object as last handled, and what changed since. */
  old?: unknown;
  diff?: FieldChange[];
  log: Logger;
  signal: AbortSignal;
  /** Failed attempts of this handler run so far. */
  retries: number;
}

export type Handler<T extends KubeObject> = (ctx: HandlerContext<T>) => Promise<void> | void;
export type DaemonFn<T extends KubeObject> = (ctx: {
  get: () => T | undefined;
  signal: AbortSignal;
  log: Logger;
}) => Promise<void>;

export interface ResourceHandlersOptions<T extends KubeObject> {
  name: string;
  client: KubeClient;
  resource: Resource;
  informer: Informer<T>;
  /** Finalizer added while delete handlers exist, for example example.com/cleanup. */
  finalizer: string;
  /** Field manager for status writes (Stalled). */
  fieldManager: string;
  /**
   * Annotation that records the last handled state, in the caller's own domain (for example
   * example.com/last-handled-configuration): the SDK names nothing of its own on users' objects.
   */
  annotation: string;
  /** Write Stalled/Ready conditions into status.conditions on permanent errors. Default true. */
  reportStalled?: boolean;
  events?: EventRecorder;
  concurrency?: number;
  logger?: Logger;
  metrics?: SdkMetrics;
}

interface UpdateHandler<T extends KubeObject> {
  fn: Handler<T>;
  field?: string;
}

/** What is compared between runs: the user's intent, not status or server bookkeeping. */
function essence(obj: KubeObject, annotation: string): Record<string, unknown> {
  const { metadata, status: _status, apiVersion: _a, kind: _k, ...rest } = obj;
  const annotations = { ...(metadata.annotations ?? {}) };
  delete annotations[annotation];
  delete annotations["kubectl.kubernetes.io/last-applied-configuration"];
  return { ...rest, metadata: { labels: metadata.labels ?? {}, annotations } };
}

export class ResourceHandlers<T extends KubeObject> {
  readonly controller: Controller;
  private readonly o: ResourceHandlersOptions<T>;
  private readonly annotation: string;
  private readonly log: Logger;
  private readonly creates: Handler<T>[] = [];
  private readonly updates: UpdateHandler<T>[] = [];
  private readonly deletes: Handler<T>[] = [];
  private readonly resumes: Handler<T>[] = [];
  private readonly timers: Array<{ intervalMs: number; fn: Handler<T> }> = [];
  private readonly daemons: DaemonFn<T>[] = [];
  private readonly resumed = new Set<string>();
  private readonly running = new Map<string, { abort: AbortController; tasks: Promise<void>[] }>();
  private stopping = new AbortController();

  constructor(o: ResourceHandlersOptions<T>) {
    this.o = o;
    this.annotation = o.annotation;
    this.log = (o.logger ?? defaultLogger()).child({ handlers: o.name });
    this.controller = new Controller({
      name: o.name,
      reconcile: (key, ctx) => this.reconcile(key, ctx.signal, ctx.retries),
      concurrency: o.concurrency,
      logger: o.logger,
      metrics: o.metrics,
    });
    this.controller.watch(o.informer);
  }

  onCreate(fn: Handler<T>): this {
    this.creates.push(fn);
    return this;
  }
  /** Runs when the object's spec, labels or annotations change; with `field`, only when that path changed. */
  onUpdate(fn: Handler<T>, opts: { field?: string } = {}): this {
    this.updates.push({ fn, field: opts.field });
    return this;
  }
  /** Runs before the object goes away; a finalizer holds it until every delete handler succeeded. */
  onDelete(fn: Handler<T>): this {
    this.deletes.push(fn);
    return this;
  }
  /** Runs once per process for objects that existed, unchanged, when the operator started. */
  onResume(fn: Handler<T>): this {
    this.resumes.push(fn);
    return this;
  }
  /** Runs every `intervalMs` while the object exists (not while a previous run is still going). */
  timer(intervalMs: number, fn: Handler<T>): this {
    this.timers.push({ intervalMs, fn });
    return this;
  }
  /** A long-running task per object, stopped through its signal when the object goes away; restarted with backoff if it fails. */
  daemon(fn: DaemonFn<T>): this {
    this.daemons.push(fn);
    return this;
  }

  start(): void {
    this.stopping = new AbortController();
    this.controller.start();
  }

  async stop(deadlineMs?: number): Promise<void> {
    this.stopping.abort();
    await this.controller.stop(deadlineMs);
    await Promise.all([...this.running.keys()].map((k) => this.stopTasks(k)));
  }

  private async reconcile(key: string, signal: AbortSignal, retries: number): Promise<undefined> {
    const obj = this.o.informer.get(key);
    if (!obj) {
      await this.stopTasks(key);
      this.resumed.delete(key);
      return;
    }
    const log = this.log.child({ key });
    if (obj.metadata.deletionTimestamp) {
      await this.stopTasks(key);
      if (!hasFinalizer(obj, this.o.finalizer)) return;
      const ok = await this.run(this.deletes, obj, { log, signal, retries }, "delete");
      if (ok) {
        await removeFinalizer(this.o.client, this.o.resource, obj, this.o.finalizer);
        await this.o.informer.waitForChange(key, obj.metadata.resourceVersion);
      }
      return;
    }
    if (this.deletes.length && !hasFinalizer(obj, this.o.finalizer)) {
      await addFinalizer(this.o.client, this.o.resource, obj, this.o.finalizer);
      await this.o.informer.waitForChange(key, obj.metadata.resourceVersion);
      return undefined; // Decide again from the object with its finalizer.
    }
    const now = essence(obj, this.annotation);
    const lastText = obj.metadata.annotations?.[this.annotation];
    if (lastText === undefined) {
      if (this.creates.length) await this.run(this.creates, obj, { log, signal, retries }, "create");
      await this.remember(obj, now);
    } else {
      let last: unknown;
      try {
        last = JSON.parse(lastText);
      } catch {
        last = {};
      }
      const changes = diff(last, now);
      if (changes.length) {
        const fns = this.updates.filter((u) => !u.field || touches(changes, u.field)).map((u) => u.fn);
        if (fns.length) await this.run(fns, obj, { log, signal, retries, old: last, diff: changes }, "update");
        await this.remember(obj, now);
      } else if (!this.resumed.has(key) && this.resumes.length) {
        await this.run(this.resumes, obj, { log, signal, retries }, "resume");
      }
    }
    this.resumed.add(key);
    this.startTasks(key);
    return undefined;
  }

  /**
   * Runs handlers in order. A PermanentError is reported (Stalled condition,
   * Warning event) and ends the run as handled: true means all succeeded.
   * Other errors propagate and the key is retried with backoff.
   */
  private async run(fns: Handler<T>[], obj: T, ctx: Omit<HandlerContext<T>, "obj">, what: string): Promise<boolean> {
    try {
      for (const fn of fns) await fn({ ...ctx, obj });
    } catch (err) {
      if (!(err instanceof PermanentError)) throw err;
      ctx.log.error({ err: err.message, handler: what }, "handler failed permanently");
      await this.reportStalled(obj, err, what);
      return false;
    }
    if (this.o.reportStalled !== false && this.hasStalled(obj)) await this.clearStalled(obj);
    return true;
  }

  private hasStalled(obj: T): boolean {
    const conds = (obj.status as { conditions?: Condition[] } | undefined)?.conditions;
    return conds?.some((c) => c.type === "Stalled") ?? false;
  }

  private async reportStalled(obj: T, err: PermanentError, what: string): Promise<void> {
    const message = `${what} handler: ${err.message}`;
    await this.o.events?.record(obj, "Warning", err.reason, what, message);
    if (this.o.reportStalled === false) return;
    const conds = (obj.status as { conditions?: Condition[] } | undefined)?.conditions;
    await this.writeConditions(obj, markStalled(conds, obj.metadata.generation, err.reason, message));
  }

  private async clearStalled(obj: T): Promise<void> {
    const conds = (obj.status as { conditions?: Condition[] } | undefined)?.conditions;
    await this.writeConditions(obj, removeCondition(conds, "Stalled"));
  }

  private async writeConditions(obj: T, conditions: Condition[]): Promise<void> {
    const { name, namespace } = obj.metadata;
    await this.o.client.applyStatus(
      this.o.resource,
      { apiVersion: obj.apiVersion, kind: obj.kind, metadata: { name, namespace }, status: { conditions } },
      this.o.fieldManager,
    );
  }

  private async remember(obj: T, state: Record<string, unknown>): Promise<void> {
    const { name, namespace } = obj.metadata;
    if (!name) return;
    await this.o.client.mergePatch(this.o.resource, name, namespace, {
      metadata: { annotations: { [this.annotation]: JSON.stringify(state) } },
    });
    await this.o.informer.waitForChange(objectKey(obj), obj.metadata.resourceVersion);
  }

  private startTasks(key: string): void {
    if (this.running.has(key) || (!this.timers.length && !this.daemons.length) || this.stopping.signal.aborted) return;
    const abort = new AbortController();
    const log = this.log.child({ key });
    const get = () => this.o.informer.get(key);
    const tasks: Promise<void>[] = [];
    for (const t of this.timers) {
      tasks.push(
        (async () => {
          while (!abort.signal.aborted) {
            await sleep(t.intervalMs, abort.signal);
            const obj = get();
            if (abort.signal.aborted || !obj) return;
            try {
              await t.fn({ obj, log, signal: abort.signal, retries: 0 });
            } catch (err) {
              log.warn({ err: errorMessage(err) }, "timer handler failed");
            }
          }
        })(),
      );
    }
    for (const d of this.daemons) {
      tasks.push(
        (async () => {
          const backoff = new Backoff({ initialMs: 1000, maxMs: 60_000 });
          while (!abort.signal.aborted) {
            try {
              await d({ get, signal: abort.signal, log });
              return;
            } catch (err) {
              if (abort.signal.aborted) return;
              const delay = backoff.next();
              log.warn({ err: errorMessage(err), retryInMs: Math.round(delay) }, "daemon failed: restarting");
              await sleep(delay, abort.signal);
            }
          }
        })(),
      );
    }
    this.running.set(key, { abort, tasks });
  }

  private async stopTasks(key: string): Promise<void> {
    const r = this.running.get(key);
    if (!r) return;
    this.running.delete(key);
    r.abort.abort();
    await Promise.all(r.tasks);
  }
}
