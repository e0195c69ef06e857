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
  stableMac,
  type XenDomain,
  type XenHost,
  type XenMaintenance,
} from "@kubexen/crds";
import {
  addFinalizer,
  type Condition,
  type EventRecorder,
  type Informer,
  type KubeClient,
  type Logger,
  type ReconcileResult,
  setCondition,
} from "@kubexen/sdk";
import type { OperatorMetrics } from "./metrics.ts";
import {
  assume,
  DEFAULT_OVERCOMMIT,
  type HostView,
  type OvercommitPolicy,
  type Placements,
  place,
} from "./placement.ts";
import { PlacementIndex } from "./placement-index.ts";
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
    const assumedOn: Placements = new Map();
    for (const [k, host] of this.assumed) {
      const obj = d.domains.get(k);
      if (!obj || obj.status?.host) {
        this.assumed.delete(k);
        continue;
      }
      assume(assumedOn, host, placed(obj));
    }
    const current = {
      get: (host: string) => {
        const extra = assumedOn.get(host);
        const base = this.index.get(host);
        return extra ? [...(base ?? []), ...extra] : base;
      },
    };
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
    const decision = place(request(xd), hosts, current, d.policy ?? DEFAULT_OVERCOMMIT);
    const meta = { name: xd.metadata.name, namespace: xd.metadata.namespace };
    const conds = (xd.status?.conditions ?? []) as Condition[];
    if ("message" in decision) {
      const conditions = setCondition(
        conds.filter((c) => c.type === "Scheduled"),
        {
          type: "Scheduled",
          status: "False",
          reason: "Unschedulable",
          message: decision.message,
          observedGeneration: xd.metadata.generation,
        },
      );
      await d.client.applyStatus(
        resources.xenDomains,
        {
          apiVersion: "kubexen.io/v1alpha1",
          kind: "XenDomain",
          metadata: meta,
          status: { phase: "Unschedulable", unschedulableReasons: decision.reasons, conditions },
        },
        SCHEDULER_MANAGER,
      );
      d.metrics?.schedulingDecisions.inc({ result: "unschedulable" });
      if (this.lastMessage.get(key) !== decision.message) {
        this.lastMessage.set(key, decision.message);
        await d.events.record(xd, "Warning", "FailedScheduling", "Schedule", decision.message);
      }
      return { requeueAfterMs: 60_000 };
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
    const meta = { name: xd.metadata.name, namespace: xd.metadata.namespace };
    const conds = (xd.status?.conditions ?? []) as Condition[];
    // Set at admission where the cluster has the policy (crds/src/admission.ts): then this writes nothing.
    await addFinalizer(d.client, resources.xenDomains, xd, DOMAIN_FINALIZER);
    const uuid = xd.status?.uuid ?? randomUUID();
    const interfaces = (xd.spec.networks ?? []).map((n, index) => ({
      index,
      mac: n.mac ?? stableMac(uuid, index),
      bridge: n.bridge,
    }));
    const conditions = setCondition(
      conds.filter((c) => c.type === "Scheduled"),
      {
        type: "Scheduled",
        status: "True",
        reason: "Bound",
        message: `bound to ${host}`,
        observedGeneration: xd.metadata.generation,
      },
    );
    // Omitting phase and unschedulableReasons releases them: the agent reports from here on.
    await d.client.applyStatus(
      resources.xenDomains,
      {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenDomain",
        metadata: meta,
        status: { host, uuid, interfaces, conditions },
      },
      SCHEDULER_MANAGER,
    );
  }
}
