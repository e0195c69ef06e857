// A supervised list-watch informer with a cache, in the manner of
// client-go's reflector and shared informer:
// - lists (paginated), then watches from the list's resourceVersion with
//   bookmarks and a server-side timeout, and watches again when that ends;
// - on 410 Gone it relists at once and diffs the new list against its cache,
//   so deletes it missed are delivered exactly once;
// - on any other error, or when the watch goes silent, it restarts after a
//   jittered exponential backoff and keeps its cache meanwhile;
// - optional periodic resync re-delivers every cached object as an update.
import { Backoff, type BackoffOptions, sleep } from "./backoff.ts";
import type { KubeClient } from "./client.ts";
import { errorMessage, isGone } from "./errors.ts";
import { defaultLogger, type Logger } from "./log.ts";
import { defaultMetrics, type SdkMetrics } from "./metrics.ts";
import { type KubeObject, objectKey, type Resource, resourcePath } from "./resource.ts";
import { WatchInactiveError, watchOnce } from "./watch.ts";

export type InformerEvent<T> =
  | { type: "add"; obj: T }
  | { type: "update"; old: T; obj: T; resync?: boolean }
  | { type: "delete"; obj: T; finalStateUnknown?: boolean };

export type InformerHandler<T> = (ev: InformerEvent<T>) => void;

export interface InformerOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Re-deliver every cached object as an update this often; 0 (default) never. */
  resyncMs?: number;
  pageSize?: number;
  /** Server-side watch timeout; default a random 300 to 600 s, as client-go. */
  watchTimeoutSeconds?: number;
  /** A watch with no byte for watchTimeoutSeconds plus this is considered dead. */
  inactivityGraceMs?: number;
  backoff?: BackoffOptions;
  /**
   * Keep metadata.managedFields in cached objects. By default they are
   * dropped, as controller-runtime's TransformStripManagedFields does: they
   * are often the larger part of an object and controllers never read them.
   */
  keepManagedFields?: boolean;
  logger?: Logger;
  metrics?: SdkMetrics;
}

export class Informer<T extends KubeObject = KubeObject> {
  readonly resource: Resource;
  private readonly client: KubeClient;
  private readonly opts: InformerOptions;
  private readonly cache = new Map<string, T>();
  private readonly handlers = new Set<InformerHandler<T>>();
  private readonly log: Logger;
  private readonly metrics: SdkMetrics;
  private readonly backoff: Backoff;
  private readonly label: string;
  private rv: string | undefined;
  private abort = new AbortController();
  private running: Promise<void> | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private syncedFlag = false;
  private resolveSynced!: () => void;
  private readonly syncedPromise: Promise<void>;

  constructor(client: KubeClient, resource: Resource, opts: InformerOptions = {}) {
    this.client = client;
    this.resource = resource;
    this.opts = opts;
    this.label = `${resource.plural}${resource.group ? `.${resource.group}` : ""}`;
    this.log = (opts.logger ?? defaultLogger()).child({
      informer: this.label,
      fieldSelector: opts.fieldSelector,
      labelSelector: opts.labelSelector,
    });
    this.metrics = opts.metrics ?? defaultMetrics();
    this.backoff = new Backoff(opts.backoff ?? { initialMs: 800, maxMs: 30_000 });
    this.syncedPromise = new Promise((r) => {
      this.resolveSynced = r;
    });
  }

  /** Subscribes to events; objects already cached are delivered as adds first. Returns an unsubscribe function. */
  addHandler(h: InformerHandler<T>): () => void {
    this.handlers.add(h);
    if (this.syncedFlag) for (const obj of this.cache.values()) this.call(h, { type: "add", obj });
    return () => this.handlers.delete(h);
  }

  get hasSynced(): boolean {
    return this.syncedFlag;
  }

  /** Resolves once the first list is in the cache. */
  synced(): Promise<void> {
    return this.syncedPromise;
  }

  get lastResourceVersion(): string | undefined {
    return this.rv;
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  /**
   * Waits until the cached object under `key` is no longer at `resourceVersion`
   * (changed or gone): after writing an object, so that the next decision is
   * made from the write and not from the stale cache. Gives up after `timeoutMs`.
   */
  async waitForChange(key: string, resourceVersion: string | undefined, timeoutMs = 5000): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (this.cache.get(key)?.metadata.resourceVersion === resourceVersion) {
      if (Date.now() >= end) return false;
      await sleep(10);
    }
    return true;
  }

  /**
   * After a write of `key` made at `before` that returned `written`: waits until the cache shows
   * it (or something later). A write that changed nothing keeps its resourceVersion: no wait.
   */
  async waitForWrite(
    key: string,
    before: string | undefined,
    written: KubeObject | undefined,
    timeoutMs = 5000,
  ): Promise<boolean> {
    if (written?.metadata.resourceVersion !== undefined && written.metadata.resourceVersion === before) return true;
    return this.waitForChange(key, before, timeoutMs);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  keys(): string[] {
    return [...this.cache.keys()];
  }

  get size(): number {
    return this.cache.size;
  }

  start(): void {
    if (this.running) return;
    this.abort = new AbortController();
    this.running = this.run();
    if (this.opts.resyncMs) {
      this.resyncTimer = setInterval(() => this.resync(), this.opts.resyncMs);
      this.resyncTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    clearInterval(this.resyncTimer);
    await this.running;
    this.running = undefined;
  }

  private call(h: InformerHandler<T>, ev: InformerEvent<T>): void {
    try {
      h(ev);
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, "informer handler threw");
    }
  }

  private emit(ev: InformerEvent<T>): void {
    this.metrics.informerEvents.inc({ resource: this.label, type: ev.type });
    for (const h of this.handlers) this.call(h, ev);
  }

  private resync(): void {
    if (!this.syncedFlag) return;
    for (const obj of this.cache.values()) this.emit({ type: "update", old: obj, obj, resync: true });
  }

  private async run(): Promise<void> {
    let needList = true;
    let cause = "initial";
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        if (needList) {
          await this.relist(cause);
          needList = false;
          this.backoff.reset();
        }
        await this.watch(signal);
        // The server ended the watch at its timeout: watch again from where we are.
        this.backoff.reset();
      } catch (err) {
        if (signal.aborted) break;
        if (isGone(err)) {
          // Our resourceVersion is older than the server keeps: relist now.
          this.log.info({ rv: this.rv }, "resourceVersion too old (410 Gone): relisting");
          needList = true;
          cause = "gone";
          continue;
        }
        const kind = err instanceof WatchInactiveError ? "inactive" : needList ? "list-error" : "watch-error";
        if (needList) cause = "list-error";
        this.metrics.watchRestarts.inc({ resource: this.label, cause: kind });
        const delay = this.backoff.next();
        this.log.warn(
          { err: errorMessage(err), cause: kind, retryInMs: Math.round(delay) },
          "list/watch failed: retrying",
        );
        await sleep(delay, signal);
      }
    }
  }

  private async relist(cause: string): Promise<void> {
    this.metrics.relists.inc({ resource: this.label, cause });
    const list = await this.client.listAll<T>(this.resource, {
      namespace: this.opts.namespace,
      labelSelector: this.opts.labelSelector,
      fieldSelector: this.opts.fieldSelector,
      limit: this.opts.pageSize ?? 500,
      signal: this.abort.signal,
    });
    const fresh = new Map<string, T>();
    for (const obj of list.items) fresh.set(objectKey(obj), this.typed(this.trim(obj)));
    for (const [key, old] of this.cache) {
      if (!fresh.has(key)) {
        this.cache.delete(key);
        this.emit({ type: "delete", obj: old, finalStateUnknown: true });
      }
    }
    for (const [key, obj] of fresh) {
      const old = this.cache.get(key);
      this.cache.set(key, obj);
      if (!old) this.emit({ type: "add", obj });
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.emit({ type: "update", old, obj });
    }
    this.rv = list.metadata.resourceVersion;
    this.log.debug({ rv: this.rv, items: fresh.size, cause }, "listed");
    if (!this.syncedFlag) {
      this.syncedFlag = true;
      this.resolveSynced();
    }
  }

  private trim(obj: T): T {
    if (this.opts.keepManagedFields || !obj.metadata?.managedFields) return obj;
    const { managedFields: _, ...metadata } = obj.metadata;
    return { ...obj, metadata };
  }

  /** List items lack apiVersion and kind; fill them in so cached objects are complete. */
  private typed(obj: T): T {
    if (obj.apiVersion && obj.kind) return obj;
    const apiVersion = this.resource.group ? `${this.resource.group}/${this.resource.version}` : this.resource.version;
    return { ...obj, apiVersion, kind: this.resource.kind };
  }

  private async watch(signal: AbortSignal): Promise<void> {
    const timeoutSeconds = this.opts.watchTimeoutSeconds ?? Math.floor(300 + Math.random() * 300);
    await watchOnce(this.client, resourcePath(this.resource, this.opts.namespace), {
      signal,
      inactivityMs: timeoutSeconds * 1000 + (this.opts.inactivityGraceMs ?? 30_000),
      query: {
        resourceVersion: this.rv,
        allowWatchBookmarks: true,
        timeoutSeconds,
        labelSelector: this.opts.labelSelector,
        fieldSelector: this.opts.fieldSelector,
      },
      onEvent: (ev) => {
        const obj = this.trim(ev.object as T);
        if (obj.metadata?.resourceVersion) this.rv = obj.metadata.resourceVersion;
        if (ev.type === "BOOKMARK") return;
        const key = objectKey(obj);
        const old = this.cache.get(key);
        if (ev.type === "DELETED") {
          if (!old) return;
          this.cache.delete(key);
          this.emit({ type: "delete", obj });
          return;
        }
        this.cache.set(key, obj);
        if (!old) this.emit({ type: "add", obj });
        else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.emit({ type: "update", old, obj });
      },
    });
  }
}
