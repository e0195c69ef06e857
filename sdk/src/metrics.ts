// Prometheus metrics of the SDK's parts, on a registry the caller owns (so
// several managers can live in one process, as tests do).
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export class SdkMetrics {
  readonly registry: Registry;
  readonly queueDepth: Gauge<"queue">;
  readonly queueAdds: Counter<"queue">;
  readonly queueLatency: Histogram<"queue">;
  readonly queueRetries: Counter<"queue">;
  readonly reconcileDuration: Histogram<"controller" | "result">;
  readonly reconcileErrors: Counter<"controller" | "kind">;
  readonly watchRestarts: Counter<"resource" | "cause">;
  readonly relists: Counter<"resource" | "cause">;
  readonly informerEvents: Counter<"resource" | "type">;
  readonly apiRequests: Counter<"verb" | "code">;
  readonly eventsDropped: Counter<"reason">;
  readonly leader: Gauge<"lease">;

  constructor(registry = new Registry(), opts: { defaultMetrics?: boolean } = {}) {
    this.registry = registry;
    if (opts.defaultMetrics) collectDefaultMetrics({ register: registry });
    const r = [registry];
    this.queueDepth = new Gauge({
      name: "workqueue_depth",
      help: "Keys waiting in the work queue.",
      labelNames: ["queue"],
      registers: r,
    });
    this.queueAdds = new Counter({
      name: "workqueue_adds_total",
      help: "Keys added to the work queue.",
      labelNames: ["queue"],
      registers: r,
    });
    this.queueLatency = new Histogram({
      name: "workqueue_queue_duration_seconds",
      help: "Time a key waits in the queue before a worker takes it.",
      labelNames: ["queue"],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60],
      registers: r,
    });
    this.queueRetries = new Counter({
      name: "workqueue_retries_total",
      help: "Rate-limited re-adds.",
      labelNames: ["queue"],
      registers: r,
    });
    this.reconcileDuration = new Histogram({
      name: "controller_reconcile_duration_seconds",
      help: "Time per reconcile.",
      labelNames: ["controller", "result"],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: r,
    });
    this.reconcileErrors = new Counter({
      name: "controller_reconcile_errors_total",
      help: "Reconciles that failed, by kind of error.",
      labelNames: ["controller", "kind"],
      registers: r,
    });
    this.watchRestarts = new Counter({
      name: "informer_watch_restarts_total",
      help: "Watches restarted, by cause.",
      labelNames: ["resource", "cause"],
      registers: r,
    });
    this.relists = new Counter({
      name: "informer_relists_total",
      help: "Full lists, by cause.",
      labelNames: ["resource", "cause"],
      registers: r,
    });
    this.informerEvents = new Counter({
      name: "informer_events_total",
      help: "Events delivered to handlers.",
      labelNames: ["resource", "type"],
      registers: r,
    });
    this.apiRequests = new Counter({
      name: "kube_client_requests_total",
      help: "Requests to the API server, by verb and status code.",
      labelNames: ["verb", "code"],
      registers: r,
    });
    this.eventsDropped = new Counter({
      name: "events_dropped_total",
      help: "Kubernetes events not sent (rate limit or error).",
      labelNames: ["reason"],
      registers: r,
    });
    this.leader = new Gauge({
      name: "leader_election_is_leader",
      help: "1 while this process leads.",
      labelNames: ["lease"],
      registers: r,
    });
  }
}

let shared: SdkMetrics | undefined;
/** Metrics for parts created without an explicit SdkMetrics. */
export function defaultMetrics(): SdkMetrics {
  shared ??= new SdkMetrics();
  return shared;
}
