// Kubernetes events (events.k8s.io/v1), aggregated and rate-limited as
// client-go's recorder does: a repeat of the same event on the same object
// within the window bumps its series count instead of creating an object, and
// each object may emit at most `burst` events, refilled slowly, so a crash
// loop cannot flood the API server.
import { hostname } from "node:os";
import type { KubeClient } from "./client.ts";
import { errorMessage } from "./errors.ts";
import { defaultLogger, type Logger } from "./log.ts";
import { defaultMetrics, type SdkMetrics } from "./metrics.ts";
import { TokenBucket } from "./ratelimit.ts";
import { coreResources, type KubeObject } from "./resource.ts";
import { microTime } from "./time.ts";

export interface EventRecorderOptions {
  /** reportingController, for example example.com/operator. */
  controller: string;
  instance?: string;
  burst?: number;
  refillPerSecond?: number;
  aggregateWindowMs?: number;
  /** Objects and events remembered for aggregation and rate limits, least recently used dropped first (client-go: 4096). */
  maxTracked?: number;
  logger?: Logger;
  metrics?: SdkMetrics;
}

interface Seen {
  name: string;
  namespace: string;
  count: number;
  first: number;
}

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly opts: Required<Omit<EventRecorderOptions, "logger" | "metrics">>;
  private readonly seen = new Map<string, Seen>();
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly log: Logger;
  private readonly metrics: SdkMetrics;

  constructor(client: KubeClient, opts: EventRecorderOptions) {
    this.client = client;
    this.opts = {
      instance: hostname(),
      burst: 25,
      refillPerSecond: 1 / 300,
      aggregateWindowMs: 10 * 60_000,
      maxTracked: 4096,
      ...opts,
    };
    this.log = opts.logger ?? defaultLogger();
    this.metrics = opts.metrics ?? defaultMetrics();
  }

  /** Records an event about `regarding`; never throws (events are best effort). */
  async record(
    regarding: KubeObject,
    type: "Normal" | "Warning",
    reason: string,
    action: string,
    note: string,
  ): Promise<void> {
    const uid = regarding.metadata.uid ?? `${regarding.metadata.namespace}/${regarding.metadata.name}`;
    const key = `${uid}\u0000${type}\u0000${reason}\u0000${action}\u0000${note}`;
    const now = Date.now();
    try {
      const prev = this.seen.get(key);
      if (prev && now - prev.first < this.opts.aggregateWindowMs) {
        prev.count++;
        await this.client.mergePatch(coreResources.events, prev.name, prev.namespace, {
          series: { count: prev.count, lastObservedTime: microTime(now) },
        });
        return;
      }
      // Re-inserted on use, so the Map's order is least recently used first.
      const bucket = this.buckets.get(uid) ?? new TokenBucket(this.opts.refillPerSecond, this.opts.burst);
      this.buckets.delete(uid);
      this.buckets.set(uid, bucket);
      dropOldest(this.buckets, this.opts.maxTracked);
      if (!bucket.tryTake()) {
        this.metrics.eventsDropped.inc({ reason: "rate-limited" });
        return;
      }
      const namespace = regarding.metadata.namespace || "default";
      const name = `${regarding.metadata.name}.${now.toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
      await this.client.create(
        coreResources.events,
        {
          metadata: { name, namespace },
          eventTime: microTime(now),
          reportingController: this.opts.controller,
          reportingInstance: this.opts.instance,
          action,
          reason,
          note: note.slice(0, 1024),
          type,
          regarding: {
            apiVersion: regarding.apiVersion,
            kind: regarding.kind,
            name: regarding.metadata.name,
            namespace: regarding.metadata.namespace,
            uid: regarding.metadata.uid,
            resourceVersion: regarding.metadata.resourceVersion,
          },
        },
        namespace,
      );
      this.seen.delete(key);
      this.seen.set(key, { name, namespace, count: 1, first: now });
      this.prune(now);
    } catch (err) {
      this.metrics.eventsDropped.inc({ reason: "error" });
      this.log.warn({ err: errorMessage(err), reason, object: regarding.metadata.name }, "could not record event");
    }
  }

  /** Oldest first (insertion order is by first sight): stops at the first entry still in its window, once under the cap. */
  private prune(now: number): void {
    for (const [k, v] of this.seen) {
      if (this.seen.size <= this.opts.maxTracked && now - v.first < this.opts.aggregateWindowMs) break;
      this.seen.delete(k);
    }
  }
}

function dropOldest<K, V>(m: Map<K, V>, max: number): void {
  for (const k of m.keys()) {
    if (m.size <= max) break;
    m.delete(k);
  }
}
