// The process around controllers: one client, shared informers, an event
// recorder, metrics and health endpoints, optional leader election, and a
// graceful shutdown on SIGTERM/SIGINT (stop taking work, finish what is in
// flight within a deadline, release the lease).
//
// Metrics are served over TLS to Kubernetes identities allowed `get` on the
// non-resource path /metrics (a TokenReview and a SubjectAccessReview per
// token, cached briefly); they name every object the process manages, so they
// are not for anyone who can reach the port. Health has its own plain
// listener, on loopback unless told otherwise (the pod IP for kubelet probes).
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import { isIP } from "node:net";
import type { KubeConfig } from "@kubernetes/client-node";
import { AccessReviewer, reviewOrUnavailable } from "./access.ts";
import { ControllerBuilder } from "./builder.ts";
import { KubeClient } from "./client.ts";
import type { Controller, ReconcileFn } from "./controller.ts";
import { errorMessage } from "./errors.ts";
import { EventRecorder } from "./events.ts";
import type { ResourceHandlers } from "./handlers.ts";
import { Informer, type InformerOptions } from "./informer.ts";
import { LeaderElector } from "./leader.ts";
import { createLogger, type Logger } from "./log.ts";
import { SdkMetrics } from "./metrics.ts";
import type { KubeObject, Resource } from "./resource.ts";
import { selfSignedCert } from "./x509.ts";

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
  /** HTTPS port for /metrics (authenticated and authorized); 0 picks a free one; undefined: no metrics server. */
  metricsPort?: number;
  /** Address the metrics server listens on. Default 0.0.0.0. */
  metricsHost?: string;
  /** PEM files of the metrics server's certificate and key; without them a self-signed one is made at start. */
  metricsTls?: { certFile: string; keyFile: string };
  /** Plain HTTP port for /healthz and /readyz; 0 picks a free one; undefined: no health server. */
  healthPort?: number;
  /** Address the health server listens on. Default 127.0.0.1. */
  healthHost?: string;
  shutdownTimeoutMs?: number;
  /** reportingInstance of the events it records; default the machine's host name. */
  eventInstance?: string;
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
  private healthServer: Server | undefined;
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
    this.events = new EventRecorder(this.client, {
      controller: o.name,
      ...(o.eventInstance ? { instance: o.eventInstance } : {}),
      logger: this.log,
      metrics: this.metrics,
    });
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

  /** A controller to declare: what it reconciles and watches, then `complete()` (builder.ts). */
  controller(name: string, reconcile: ReconcileFn, opts: { concurrency?: number } = {}): ControllerBuilder {
    return new ControllerBuilder(this, name, reconcile, opts);
  }

  /** Adds a controller or handler set; it runs while this process leads (or always, without leader election). */
  add(r: Controller | ResourceHandlers<KubeObject> | Runnable): void {
    this.runnables.push(r as Runnable);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** https://host:port of the metrics server, once started. */
  get metricsAddress(): string | undefined {
    return address("https", this.server);
  }

  /** http://host:port of the health server, once started. */
  get healthAddress(): string | undefined {
    return address("http", this.healthServer);
  }

  /** Starts informers and, once leader (if elected), every controller. Resolves when started; `done()` when stopped. */
  async start(): Promise<void> {
    if (this.o.metricsPort !== undefined) await this.serveMetrics(this.o.metricsPort);
    if (this.o.healthPort !== undefined) await this.serveHealth(this.o.healthPort);
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
    await Promise.all([close(this.server), close(this.healthServer)]);
    this.log.info("stopped");
  }

  private async serveMetrics(port: number): Promise<void> {
    const host = this.o.metricsHost ?? "0.0.0.0";
    const t = this.o.metricsTls;
    const tls = t
      ? { cert: readFileSync(t.certFile, "utf8"), key: readFileSync(t.keyFile, "utf8") }
      : await selfSignedCert(this.name, ["localhost"], isIP(host) && host !== "0.0.0.0" ? [host] : ["127.0.0.1"]);
    const reviewer = new AccessReviewer(this.client);
    this.server = createTlsServer(tls, (req, res) => {
      if (req.url !== "/metrics") return reply(res, 404, "not found");
      void reviewOrUnavailable(reviewer, req.headers.authorization, "/metrics").then(async (d) => {
        if (d.code !== 200) {
          this.log.debug({ code: d.code, reason: d.reason }, "metrics request refused");
          return reply(res, d.code, d.reason);
        }
        try {
          const body = await this.metrics.registry.metrics();
          res.writeHead(200, { "content-type": this.metrics.registry.contentType });
          res.end(body);
        } catch (err) {
          reply(res, 500, errorMessage(err));
        }
      });
    });
    await listen(this.server, port, host);
  }

  private serveHealth(port: number): Promise<void> {
    this.healthServer = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (req.url === "/healthz") reply(res, this.stopped ? 503 : 200, this.stopped ? "stopping" : "ok");
      else if (req.url === "/readyz") reply(res, this.ready ? 200 : 503, this.ready ? "ok" : "not ready");
      else reply(res, 404, "not found");
    });
    return listen(this.healthServer, port, this.o.healthHost ?? "127.0.0.1");
  }
}

function reply(res: ServerResponse, code: number, text: string): void {
  res.writeHead(code, { "content-type": "text/plain; charset=utf-8" });
  res.end(text);
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function close(server: Server | undefined): Promise<void> {
  return new Promise((res) => (server?.listening ? server.close(() => res()) : res()));
}

function address(scheme: string, server: Server | undefined): string | undefined {
  const a = server?.address();
  if (!a || typeof a !== "object") return undefined;
  return `${scheme}://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`;
}
