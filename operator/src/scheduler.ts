// The scheduler: binds each unbound XenDomain to a XenHost (status.host),
// generating its identity (UUID, MACs) in status. Decisions come from
// placement.ts; bindings not yet visible in the informer are assumed, so two
// domains bound in a row never overbook a host. An unschedulable domain gets
// Scheduled=False with the reasons counted per cause, and is retried
// whenever a host changes.
import { randomUUID } from "node:crypto";
import {
  DOMAIN_FINALIZER,
  resources,
  statusApply,
  type XenDomain,
  type XenHost,
  type XenMaintenance,
} from "@kubexen/crds";
import {
  addFinalizer,
  type EventRecorder,
  type Informer,
  type KubeClient,
  type Logger,
  objectKey,
  type ReconcileResult,
} from "@kubexen/sdk";
import type { OperatorContext } from "./context.ts";
import type { OperatorMetrics } from "./metrics.ts";
import { DEFAULT_OVERCOMMIT, type HostView, type OvercommitPolicy } from "./placement.ts";
import { PlacementIndex } from "./placement-index.ts";
import { assumedPlacements, bindingStatus, decideSchedule, withAssumed } from "./scheduler-plan.ts";
import { hostView, placed, request } from "./views.ts";

export { DOMAIN_FINALIZER };
export const SCHEDULER_MANAGER = "kubexen-scheduler";

export interface SchedulerDeps {
  client: KubeClient;
  domains: Informer<XenDomain>;
  hosts: Informer<XenHost>;
  maintenances: Informer<XenMaintenance>;
  events: EventRecorder;
  log: Logger;
  policy?: OvercommitPolicy;
  metrics?: OperatorMetrics;
}

export class Scheduler {
  private readonly d: SchedulerDeps;
  /** Bindings written but not yet seen by the informer: key -> host. */
  private readonly assumed = new Map<string, string>();
  /** Domains found unschedulable, with the message they were given. */
  private readonly lastMessage = new Map<string, string>();
  private readonly index = new PlacementIndex();
  private readonly views = new WeakMap<XenHost, HostView>();

  constructor(d: SchedulerDeps) {
    this.d = d;
    d.domains.addHandler((ev) => this.index.apply(ev));
  }

  /**
   * Keys of domains found unschedulable and still waiting, to retry when hosts or maintenances
   * change (kube-scheduler's unschedulable queue). Domains not yet decided are queued already.
   */
  pending(): string[] {
    const out: string[] = [];
    for (const key of this.lastMessage.keys()) {
      const x = this.d.domains.get(key);
      if (!x) this.lastMessage.delete(key);
      else if (!x.status?.host && !x.metadata.deletionTimestamp) out.push(key);
    }
    return out;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const { d } = this;
    const xd = d.domains.get(key);
    if (!xd || xd.metadata.deletionTimestamp) return undefined;
    if (xd.status?.host) {
      this.assumed.delete(key);
      return undefined;
    }
    if (this.assumed.has(key)) return undefined;
    // Bound domains from the index, plus the bindings written but not seen yet.
    const pending = assumedPlacements(
      [...this.assumed].map(([k, host]) => {
        const obj = d.domains.get(k);
        return { key: k, host, domain: obj && { bound: !!obj.status?.host, placed: placed(obj) } };
      }),
    );
    for (const k of pending.forget) this.assumed.delete(k);
    const inMaintenance = new Set(d.maintenances.list().map((m) => m.spec.host));
    const hosts = d.hosts.list().map((h) => {
      // A host's view changes only with its object (the informer replaces it on every update).
      let v = this.views.get(h);
      if (!v) {
        v = hostView(h, []);
        this.views.set(h, v);
      }
      return inMaintenance.has(v.name) ? { ...v, inMaintenance: true } : v;
    });
    const decision = decideSchedule({
      request: request(xd),
      hosts,
      placements: withAssumed(this.index, pending.placements),
      policy: d.policy ?? DEFAULT_OVERCOMMIT,
      conditions: xd.status?.conditions ?? [],
      generation: xd.metadata.generation,
      lastMessage: this.lastMessage.get(key),
    });
    if (decision.kind === "unschedulable") {
      await d.client.applyStatus(
        resources.xenDomains,
        statusApply("XenDomain", { name: xd.metadata.name, namespace: xd.metadata.namespace }, decision.status),
        SCHEDULER_MANAGER,
      );
      d.metrics?.schedulingDecisions.inc({ result: "unschedulable" });
      if (decision.recordEvent) {
        this.lastMessage.set(key, decision.message);
        await d.events.record(xd, "Warning", "FailedScheduling", "Schedule", decision.message);
      }
      return { requeueAfterMs: decision.requeueAfterMs };
    }
    // Assumed before any await: concurrent decisions (several workers) see this one at once.
    this.assumed.set(key, decision.host);
    try {
      await this.bind(xd, decision.host);
    } catch (err) {
      this.assumed.delete(key);
      throw err;
    }
    d.metrics?.schedulingDecisions.inc({ result: "bound" });
    this.lastMessage.delete(key);
    // Like client-go's recorder, the event does not hold up the next binding.
    void d.events.record(xd, "Normal", "Scheduled", "Schedule", `bound to ${decision.host}`).catch(() => {});
    return undefined;
  }

  private async bind(xd: XenDomain, host: string): Promise<void> {
    const { d } = this;
    // Set at admission where the cluster has the policy (crds/src/admission.ts): then this writes nothing.
    await addFinalizer(d.client, resources.xenDomains, xd, DOMAIN_FINALIZER);
    await d.client.applyStatus(
      resources.xenDomains,
      statusApply(
        "XenDomain",
        { name: xd.metadata.name, namespace: xd.metadata.namespace },
        bindingStatus({
          host,
          uuid: xd.status?.uuid ?? randomUUID(),
          networks: xd.spec.networks,
          conditions: xd.status?.conditions ?? [],
          generation: xd.metadata.generation,
        }),
      ),
      SCHEDULER_MANAGER,
    );
  }
}

/** The scheduler: unbound XenDomains; host, maintenance and deletion events retry the unschedulable ones. */
export function setupScheduler(c: OperatorContext): Scheduler {
  const scheduler = new Scheduler({
    client: c.mgr.client,
    domains: c.domains,
    hosts: c.hosts,
    maintenances: c.maintenances,
    events: c.mgr.events,
    log: c.log,
    metrics: c.metrics,
  });
  // Decisions are synchronous and assumed before any write, so workers only overlap their writes:
  // as kube-scheduler binds asynchronously, bindings in flight set the pace (32 at ~0.2 s each
  // under load keep up with 100 creates a second; 8 did not).
  c.mgr
    .controller("scheduler", (k) => scheduler.reconcile(k), { concurrency: 32 })
    // A domain leaving frees room for others.
    .watchesEvents(c.domains, (ev) => (ev.type === "delete" ? scheduler.pending() : objectKey(ev.obj)))
    // Host and maintenance changes can make waiting domains schedulable.
    .watchesEvents(c.hosts, () => scheduler.pending())
    .watchesEvents(c.maintenances, () => scheduler.pending())
    .complete();
  return scheduler;
}
