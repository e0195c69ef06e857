// Host health, as Kubernetes' node lifecycle controller does it for nodes:
// a XenHost whose agent Lease has not been renewed within its duration is
// marked Ready=False (HeartbeatLost); the agent sets Ready=True itself while
// it reports. The Fenced condition (fencing.ts) says when the host has
// certainly stopped running guests, which HA and migrations wait for.
// Leases are read from a cache; a verdict that would change a condition is
// made again on a Lease read from the API server (a lagging cache shows an
// older renewal, and must never fence a live host).
import { hostLeaseName, hostOfLease, resources, statusApply, type XenHost } from "@kubexen/crds";
import {
  type EventRecorder,
  getCondition,
  type Informer,
  type KubeClient,
  type KubeObject,
  type Logger,
  type ReconcileResult,
  setCondition,
} from "@kubexen/sdk";
import type { OperatorContext } from "./context.ts";
import { FENCE_MARGIN_MS, fenceVerdict, type LeaseView, leaseExpiredForMs } from "./fencing.ts";
import type { OperatorMetrics } from "./metrics.ts";

export { leaseExpiredForMs } from "./fencing.ts";

export const LEASES = {
  group: "coordination.k8s.io",
  version: "v1",
  plural: "leases",
  kind: "Lease",
  namespaced: true,
};

export class HostHealth {
  private readonly d: {
    client: KubeClient;
    hosts: Informer<XenHost>;
    /** The agents' Leases in `namespace`. */
    leases: Informer<KubeObject & { spec?: LeaseView }>;
    namespace: string;
    fieldManager: string;
    log: Logger;
    events?: EventRecorder;
    metrics?: OperatorMetrics;
    fenceMarginMs?: number;
  };
  constructor(d: HostHealth["d"]) {
    this.d = d;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const host = this.d.hosts.get(key);
    if (!host?.metadata.name) return undefined;
    const name = hostLeaseName(host.metadata.name);
    const cached = this.d.leases.get(`${this.d.namespace}/${name}`)?.spec;
    let v = this.verdict(host, cached);
    if (v.readyChange || v.fencedChange) {
      const fresh = await this.d.client
        .getOrUndefined<KubeObject & { spec?: LeaseView }>(LEASES, name, this.d.namespace)
        .then((l) => l?.spec);
      v = this.verdict(host, fresh);
    }
    const { lease, expiredFor, lost, readyChange, fencedChange, conds } = v;
    if (readyChange || fencedChange) {
      // Apply only the conditions this controller owns (Fenced, and Ready while the heartbeat is
      // lost); the agent's stay its own. Our Ready=False stays ours until the agent reports Ready
      // again: applying without it would strip its fields and leave a condition with a type only.
      let next =
        conds?.filter((c) => c.type === "Fenced" || (c.type === "Ready" && (lost || c.reason === "HeartbeatLost"))) ??
        [];
      if (readyChange) {
        next = setCondition(next, {
          type: "Ready",
          status: "False",
          reason: "HeartbeatLost",
          message: lease
            ? `the node agent's Lease expired ${Math.round((expiredFor ?? 0) / 1000)} s ago`
            : "the node agent has no Lease",
        });
        this.d.log.warn({ host: host.metadata.name }, "host heartbeat lost: Ready=False");
      }
      if (fencedChange) {
        const f = v.fence;
        next = setCondition(next, {
          type: "Fenced",
          status: f.fenced ? "True" : "False",
          reason: f.reason,
          message: f.message,
        });
        if (f.fenced) {
          this.d.log.warn({ host: host.metadata.name, reason: f.reason }, "host fenced: its domains may run elsewhere");
          this.d.metrics?.hostsFenced.inc({ reason: f.reason });
          await this.d.events?.record(host, "Warning", "HostFenced", "Fence", f.message);
        }
      }
      await this.d.client.applyStatus(
        resources.xenHosts,
        statusApply("XenHost", { name: host.metadata.name }, { conditions: next }),
        this.d.fieldManager,
      );
    }
    if (!lost) return { requeueAfterMs: Math.max(500, -(expiredFor ?? 0) + 500) };
    return { requeueAfterMs: Math.min(5_000, Math.max(500, (v.fence.recheckMs ?? 5_000) + 200)) };
  }

  private verdict(host: XenHost, lease: LeaseView | undefined) {
    const now = Date.now();
    const expiredFor = leaseExpiredForMs(lease, now);
    const conds = host.status?.conditions;
    const ready = getCondition(conds, "Ready");
    const lost = expiredFor === undefined || expiredFor > 0;
    const readyChange = lost && (ready?.status !== "False" || ready.reason !== "HeartbeatLost");
    const fence = fenceVerdict({
      lease,
      fencing: host.status?.fencing,
      outOfService: host.spec?.outOfService ?? false,
      nowMs: now,
      marginMs: this.d.fenceMarginMs ?? FENCE_MARGIN_MS,
    });
    const fenced = getCondition(conds, "Fenced");
    const fencedChange = fenced?.status !== (fence.fenced ? "True" : "False") || fenced.reason !== fence.reason;
    return { lease, expiredFor, lost, readyChange, fence, fencedChange, conds };
  }
}

/** Host health: each XenHost, and the Lease its agent renews (a renewal after an expiry brings it back at once). */
export function setupHostHealth(c: OperatorContext, fenceMarginMs?: number): HostHealth {
  const health = new HostHealth({
    client: c.mgr.client,
    hosts: c.hosts,
    leases: c.leases,
    namespace: c.namespace,
    fieldManager: "kubexen-host-health",
    log: c.log,
    events: c.mgr.events,
    metrics: c.metrics,
    fenceMarginMs,
  });
  c.mgr
    .controller("hosthealth", (k) => health.reconcile(k))
    .for(c.hosts)
    .watches(c.leases, (l) => hostOfLease(l.metadata.name ?? ""))
    .complete();
  return health;
}
