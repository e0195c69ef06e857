// The process around controllers: one client, shared informers, an event
// recorder, metrics and health endpoints, optional leader election, and a
// graceful shutdown on SIGTERM/SIGINT (stop taking work, finish what is in
// flight within a deadline, release the lease).
import { createServer, type Server } from "node:http";
import type { KubeConfig } from "@kubernetes/client-node";
import { KubeClient } from "./client.ts";
import type { Controller } from "./controller.ts";
import { errorMessage } from "./errors.ts";
import { EventRecorder } from "./events.ts";
import type { ResourceHandlers } from "./handlers.ts";
import { Informer, type InformerOptions } from "./informer.ts";
import { LeaderElector } from "./leader.ts";
import { createLogger, type Logger } from "./log.ts";
import { SdkMetrics } from "./metrics.ts";
import type { KubeObject, Resource } from "./resource.ts";

export interface ManagerOptions {
  kubeConfig: KubeConfig;
  /** Component name: logger name, field manager, reportingController. */
  name: string;
  leaderElection?: {
    namespace: string;
    leaseName: string;
    identity?: string;
    leaseDurationMs?: number;
    renewDeadlineMs?: number;
    retryPeriodMs?: number;
  };
  /** Port for /metrics, /healthz and /readyz; 0 picks a free one; undefined: no server. */
  metricsPort?: number;
  metricsHost?: string;
  shutdownTimeoutMs?: number;
  /** Exit the process when the lease is lost (client-go's behaviour). Default true. */
  exitOnLostLease?: boolean;
  handleSignals?: boolean;
  logger?: Logger;
}

type Runnable = { start(): void; stop(deadlineMs?: number): Promise<void> };

export class Manager {
  readonly name: string;
  readonly client: KubeClient;
  readonly metrics: SdkMetrics;
  readonly events: EventRecorder;
  readonly log: Logger;
  private readonly o: ManagerOptions;
  private readonly informers = new Map<string, Informer<KubeObject>>();
  private readonly runnables: Runnable[] = [];
  private readonly abort = new AbortController();
  private server: Server | undefined;
  private elector: LeaderElector | undefined;
  private running: Promise<void> | undefined;
  private leading = false;
  private ready = false;
  private stopped = false;

  constructor(o: ManagerOptions) {
    this.o = o;
    this.name = o.name;
    this.log = o.logger ?? createLogger(o.name);
    this.metrics = new SdkMetrics(undefined, { defaultMetrics: true });
    this.client = new KubeClient(o.kubeConfig, { metrics: this.metrics, userAgent: o.name });
    this.events = new EventRecorder(this.client, { controller: o.name, logger: this.log, metrics: this.metrics });
  }

  /** A shared informer for this resource and selector (created on first request). */
  informer<T extends KubeObject>(
    resource: Resource,
    opts: Omit<InformerOptions, "logger" | "metrics"> = {},
  ): Informer<T> {
    const key = [
      resource.group,
      resource.version,
      resource.plural,
      opts.namespace,
      opts.labelSelector,
      opts.fieldSelector,
    ].join("|");
    let inf = this.informers.get(key);
    if (!inf) {
      inf = new Informer(this.client, resource, { ...opts, logger: this.log, metrics: this.metrics });
      this.informers.set(key, inf);
    }
    return inf as unknown as Informer<T>;
  }

  /** Adds a controller or handler set; it runs while this process leads (or always, without leader election). */
  add(r: Controller | ResourceHandlers<KubeObject> | Runnable): void {
    this.runnables.push(r as Runnable);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  get metricsAddress(): string | undefined {
    const a = this.server?.address();
    return a && typeof a === "object" ? `http://${a.address}:${a.port}` : undefined;
  }

  /** Starts informers and, once leader (if elected), every controller. Resolves when started; `done()` when stopped. */
  async start(): Promise<void> {
    if (this.o.metricsPort !== undefined) await this.serve(this.o.metricsPort);
    if (this.o.handleSignals !== false) {
      const onSignal = (sig: string) => {
        this.log.info({ signal: sig }, "shutting down");
        void this.stop().then(() => process.exit(0));
      };
      process.once("SIGTERM", () => onSignal("SIGTERM"));
      process.once("SIGINT", () => onSignal("SIGINT"));
    }
    for (const inf of this.informers.values()) inf.start();
    await Promise.all([...this.informers.values()].map((i) => i.synced()));
    this.ready = true;
    const le = this.o.leaderElection;
    if (!le) {
      for (const r of this.runnables) r.start();
      this.leading = true;
      this.running = Promise.resolve();
      return;
    }
    this.elector = new LeaderElector(this.client, {
      namespace: le.namespace,
      name: le.leaseName,
      identity: le.identity,
      leaseDurationMs: le.leaseDurationMs,
      renewDeadlineMs: le.renewDeadlineMs,
      retryPeriodMs: le.retryPeriodMs,
      logger: this.log,
      metrics: this.metrics,
      onStartedLeading: async (signal) => {
        this.leading = true;
        for (const r of this.runnables) r.start();
        await new Promise<void>((res) => signal.addEventListener("abort", () => res(), { once: true }));
      },
      onStoppedLeading: () => {
        this.leading = false;
        void Promise.all(this.runnables.map((r) => r.stop(this.o.shutdownTimeoutMs))).then(() => {
          if (!this.abort.signal.aborted && this.o.exitOnLostLease !== false) {
            this.log.error("lost the leader lease: exiting");
            process.exit(1);
          }
        });
      },
    });
    this.running = this.elector.run(this.abort.signal);
  }

  get identity(): string | undefined {
    return this.elector?.identity;
  }

  /** Stops taking work, waits for reconciles in flight (up to the shutdown timeout), releases the lease, stops informers. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.ready = false;
    const deadline = this.o.shutdownTimeoutMs ?? 30_000;
    await Promise.all(
      this.runnables.map((r) => r.stop(deadline).catch((e) => this.log.error({ err: errorMessage(e) }, "stop failed"))),
    );
    this.abort.abort();
    await this.running;
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
    await new Promise<void>((res) => (this.server ? this.server.close(() => res()) : res()));
    this.log.info("stopped");
  }

  private serve(port: number): Promise<void> {
    this.server = createServer((req, res) => {
      if (req.url === "/metrics") {
        this.metrics.registry
          .metrics()
          .then((body) => {
            res.writeHead(200, { "content-type": this.metrics.registry.contentType });
            res.end(body);
          })
          .catch((err) => {
            res.writeHead(500);
            res.end(errorMessage(err));
          });
      } else if (req.url === "/healthz") {
        res.writeHead(this.stopped ? 503 : 200);
        res.end(this.stopped ? "stopping" : "ok");
      } else if (req.url === "/readyz") {
        res.writeHead(this.ready ? 200 : 503);
        res.end(this.ready ? "ok" : "not ready");
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    return new Promise((resolve) => this.server?.listen(port, this.o.metricsHost ?? "0.0.0.0", () => resolve()));
  }
}
