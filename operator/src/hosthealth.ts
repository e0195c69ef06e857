// Host health, as Kubernetes' node lifecycle controller does it for nodes:
// a XenHost whose agent Lease has not been renewed within its duration is
// marked Ready=False (HeartbeatLost); the agent sets Ready=True itself while
// it reports. The Fenced condition (fencing.ts) says when the host has
// certainly stopped running guests, which HA and migrations wait for.
import { hostLeaseName, resources, type XenHost } from "@kubexen/crds";
import {
  type Condition,
  type EventRecorder,
  getCondition,
  type Informer,
  type KubeClient,
  type KubeObject,
  type Logger,
  type ReconcileResult,
  setCondition,
} from "@kubexen/sdk";
import { FENCE_MARGIN_MS, fenceVerdict, type LeaseView, leaseExpiredForMs } from "./fencing.ts";
import type { OperatorMetrics } from "./metrics.ts";

export { leaseExpiredForMs } from "./fencing.ts";

const LEASES = { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true };

export class HostHealth {
  private readonly d: {
    client: KubeClient;
    hosts: Informer<XenHost>;
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
    const lease = await this.d.client
      .getOrUndefined<KubeObject & { spec?: LeaseView }>(LEASES, hostLeaseName(host.metadata.name), this.d.namespace)
      .then((l) => l?.spec);
    const now = Date.now();
    const expiredFor = leaseExpiredForMs(lease, now);
    const conds = host.status?.conditions as Condition[] | undefined;
    const ready = getCondition(conds, "Ready");
    const lost = expiredFor === undefined || expiredFor > 0;
    const readyChange = lost && (ready?.status !== "False" || ready.reason !== "HeartbeatLost");
    const v = fenceVerdict({
      lease,
      fencing: host.status?.fencing,
      outOfService: host.spec?.outOfService ?? false,
      nowMs: now,
      marginMs: this.d.fenceMarginMs ?? FENCE_MARGIN_MS,
    });
    const fenced = getCondition(conds, "Fenced");
    const fencedStatus = v.fenced ? "True" : "False";
    const fencedChange = fenced?.status !== fencedStatus || fenced.reason !== v.reason;
    if (readyChange || fencedChange) {
      // Apply only the conditions this controller owns (Fenced, and Ready while the heartbeat is
      // lost); the agent's stay its own.
      let next = conds?.filter((c) => c.type === "Fenced" || (c.type === "Ready" && lost)) ?? [];
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
        next = setCondition(next, { type: "Fenced", status: fencedStatus, reason: v.reason, message: v.message });
        if (v.fenced) {
          this.d.log.warn({ host: host.metadata.name, reason: v.reason }, "host fenced: its domains may run elsewhere");
          this.d.metrics?.hostsFenced.inc({ reason: v.reason });
          await this.d.events?.record(host, "Warning", "HostFenced", "Fence", v.message);
        }
      }
      await this.d.client.applyStatus(
        resources.xenHosts,
        {
          apiVersion: "kubexen.io/v1alpha1",
          kind: "XenHost",
          metadata: { name: host.metadata.name },
          status: { conditions: next },
        },
        this.d.fieldManager,
      );
    }
    if (!lost) return { requeueAfterMs: Math.max(500, -(expiredFor ?? 0) + 500) };
    return { requeueAfterMs: Math.min(5_000, Math.max(500, (v.recheckMs ?? 5_000) + 200)) };
  }
}
