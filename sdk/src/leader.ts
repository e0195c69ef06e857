// Lease-based leader election with client-go's semantics: the leader renews
// the Lease every retryPeriod; if it cannot renew within renewDeadline it
// stops leading (before the lease can expire for others); a candidate takes
// the lease only after observing it unchanged for leaseDuration (timed by its
// own clock, so clock skew between machines does not matter); the leader
// releases the lease on shutdown so a successor need not wait.
import { hostname } from "node:os";
import { sleep } from "./backoff.ts";
import type { KubeClient } from "./client.ts";
import { ApiError, errorMessage } from "./errors.ts";
import { defaultLogger, type Logger } from "./log.ts";
import { defaultMetrics, type SdkMetrics } from "./metrics.ts";
import { microTime } from "./time.ts";

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Called when this process becomes leader; the signal aborts when it stops leading. */
  onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  onStoppedLeading?: () => void;
  onNewLeader?: (identity: string) => void;
  logger?: Logger;
  metrics?: SdkMetrics;
}

interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

export class LeaderElector {
  readonly identity: string;
  private readonly client: KubeClient;
  private readonly o: Required<
    Omit<LeaderElectionOptions, "onStoppedLeading" | "onNewLeader" | "logger" | "metrics" | "identity">
  > &
    LeaderElectionOptions;
  private readonly log: Logger;
  private readonly metrics: SdkMetrics;
  private observed: { key: string; at: number; lease?: Lease } = { key: "", at: 0 };
  private leading = false;
  private lastLeader = "";

  constructor(client: KubeClient, opts: LeaderElectionOptions) {
    this.client = client;
    this.identity = opts.identity ?? `${hostname()}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
    this.o = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...opts };
    if (this.o.renewDeadlineMs >= this.o.leaseDurationMs)
      throw new Error("leader election: renewDeadline must be shorter than leaseDuration");
    this.log = (opts.logger ?? defaultLogger()).child({
      lease: `${opts.namespace}/${opts.name}`,
      identity: this.identity,
    });
    this.metrics = opts.metrics ?? defaultMetrics();
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Campaigns, leads, and campaigns again after losing the lease, until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (!(await this.acquire(signal))) break;
      const leadership = new AbortController();
      this.leading = true;
      this.metrics.leader.set({ lease: this.o.name }, 1);
      this.log.info("started leading");
      const work = Promise.resolve()
        .then(() => this.o.onStartedLeading(leadership.signal))
        .catch((err) => this.log.error({ err: errorMessage(err) }, "onStartedLeading failed"));
      await this.renewLoop(signal);
      leadership.abort();
      this.leading = false;
      this.metrics.leader.set({ lease: this.o.name }, 0);
      this.log.info("stopped leading");
      this.o.onStoppedLeading?.();
      await work;
      if (signal.aborted) await this.release();
    }
  }

  private async acquire(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      if (await this.tryAcquireOrRenew()) return true;
      await sleep(this.o.retryPeriodMs * (1 + 0.2 * Math.random()), signal);
    }
    return false;
  }

  /** Renews every retryPeriod; returns when a renewal could not succeed within renewDeadline, or on abort. */
  private async renewLoop(signal: AbortSignal): Promise<void> {
    let lastRenew = Date.now();
    while (!signal.aborted) {
      await sleep(this.o.retryPeriodMs, signal);
      if (signal.aborted) return;
      const ok = await this.tryAcquireOrRenew(this.o.renewDeadlineMs - (Date.now() - lastRenew));
      if (ok) lastRenew = Date.now();
      else if (Date.now() - lastRenew >= this.o.renewDeadlineMs) {
        this.log.warn({ sinceRenewMs: Date.now() - lastRenew }, "failed to renew lease within the renew deadline");
        return;
      }
    }
  }

  private async tryAcquireOrRenew(timeoutMs = this.o.retryPeriodMs * 2): Promise<boolean> {
    const { namespace, name } = this.o;
    const now = Date.now();
    const timeout = Math.max(200, Math.min(timeoutMs, this.o.renewDeadlineMs));
    const desired = (prev?: LeaseSpec): LeaseSpec => {
      const sameHolder = prev?.holderIdentity === this.identity;
      return {
        holderIdentity: this.identity,
        leaseDurationSeconds: Math.ceil(this.o.leaseDurationMs / 1000),
        acquireTime: sameHolder && prev?.acquireTime ? prev.acquireTime : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: (prev?.leaseTransitions ?? 0) + (sameHolder || !prev?.holderIdentity ? 0 : 1),
      };
    };
    try {
      const path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`;
      let lease: Lease | undefined;
      try {
        lease = await this.client.request<Lease>("GET", `${path}/${name}`, { timeoutMs: timeout });
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 404)) throw e;
      }
      if (!lease) {
        await this.client.request("POST", path, {
          timeoutMs: timeout,
          body: { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name, namespace }, spec: desired() },
        });
        this.observe(undefined, now, true);
        return true;
      }
      const spec = lease.spec ?? {};
      this.observe(lease, now);
      const holder = spec.holderIdentity ?? "";
      if (holder && holder !== this.identity) {
        const expired = now - this.observed.at > (spec.leaseDurationSeconds ?? 15) * 1000;
        if (!expired) return false;
      }
      await this.client.request("PUT", `${path}/${name}`, {
        timeoutMs: timeout,
        body: { ...lease, apiVersion: "coordination.k8s.io/v1", kind: "Lease", spec: desired(spec) },
      });
      this.observe(undefined, now, true);
      return true;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 409))
        this.log.debug({ err: errorMessage(err) }, "lease attempt failed");
      return false;
    }
  }

  /** Remembers when the lease record last changed, by this process's clock. */
  private observe(lease: Lease | undefined, now: number, ours = false): void {
    const key = ours ? `${this.identity}` : `${lease?.spec?.holderIdentity}|${lease?.spec?.renewTime}`;
    if (key !== this.observed.key) this.observed = { key, at: now, lease };
    const holder = ours ? this.identity : (lease?.spec?.holderIdentity ?? "");
    if (holder && holder !== this.lastLeader) {
      this.lastLeader = holder;
      this.o.onNewLeader?.(holder);
    }
  }

  /** Gives the lease up so a successor can take it at once. */
  private async release(): Promise<void> {
    const { namespace, name } = this.o;
    try {
      const path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${name}`;
      const lease = await this.client.request<Lease>("GET", path, { timeoutMs: 2000 });
      if (lease.spec?.holderIdentity !== this.identity) return;
      await this.client.request("PUT", path, {
        timeoutMs: 2000,
        body: {
          ...lease,
          spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, acquireTime: null, renewTime: null },
        },
      });
      this.log.info("released lease");
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, "could not release lease");
    }
  }
}
