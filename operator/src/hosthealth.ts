// Host health, as Kubernetes' node lifecycle controller does it for nodes:
// a XenHost whose agent Lease has not been renewed within its duration is
// marked Ready=False (HeartbeatLost). The agent sets Ready=True itself
// while it reports.
import { hostLeaseName, resources, type XenHost } from "@kubexen/crds";
import {
  type Condition,
  getCondition,
  type Informer,
  type KubeClient,
  type KubeObject,
  type Logger,
  type ReconcileResult,
  setCondition,
} from "@kubexen/sdk";

export interface LeaseView {
  renewTime?: string;
  leaseDurationSeconds?: number;
}

/** Milliseconds since the lease expired (negative while it is valid); undefined without a lease. */
export function leaseExpiredForMs(lease: LeaseView | undefined, nowMs: number): number | undefined {
  if (!lease?.renewTime) return undefined;
  const renew = Date.parse(lease.renewTime);
  return nowMs - (renew + (lease.leaseDurationSeconds ?? 40) * 1000);
}

export class HostHealth {
  private readonly d: {
    client: KubeClient;
    hosts: Informer<XenHost>;
    namespace: string;
    fieldManager: string;
    log: Logger;
  };
  constructor(d: HostHealth["d"]) {
    this.d = d;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const host = this.d.hosts.get(key);
    if (!host?.metadata.name) return undefined;
    const lease = await this.d.client
      .getOrUndefined<KubeObject & { spec?: LeaseView }>(
        { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true },
        hostLeaseName(host.metadata.name),
        this.d.namespace,
      )
      .then((l) => l?.spec);
    const expiredFor = leaseExpiredForMs(lease, Date.now());
    const ready = getCondition(host.status?.conditions as Condition[] | undefined, "Ready");
    if (expiredFor === undefined || expiredFor > 0) {
      if (ready?.status !== "False" || ready.reason !== "HeartbeatLost") {
        const conditions = setCondition(host.status?.conditions as Condition[] | undefined, {
          type: "Ready",
          status: "False",
          reason: "HeartbeatLost",
          message: lease
            ? `the node agent's Lease expired ${Math.round((expiredFor ?? 0) / 1000)} s ago`
            : "the node agent has no Lease",
        });
        await this.d.client.applyStatus(
          resources.xenHosts,
          {
            apiVersion: "kubexen.io/v1alpha1",
            kind: "XenHost",
            metadata: { name: host.metadata.name },
            status: { conditions: conditions.filter((c) => c.type === "Ready") },
          },
          this.d.fieldManager,
        );
        this.d.log.warn({ host: host.metadata.name }, "host heartbeat lost: Ready=False");
      }
      return { requeueAfterMs: 5_000 };
    }
    // Check again just after the lease would expire.
    return { requeueAfterMs: Math.max(500, -expiredFor + 500) };
  }
}
