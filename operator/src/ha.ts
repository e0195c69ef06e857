// HA: once a host is Fenced (hosthealth.ts: its fence window has passed, or
// the administrator declared it out of service), its domains are certainly
// not running. Those whose runStrategy wants them running are released from
// the host so the scheduler starts them elsewhere, keeping their UUID and
// MACs; the others are marked Failed where they are. Domains with a live
// migration under way are left to the migration, which settles first.
import { resources, type XenDomain, type XenHost, type XenMigration } from "@kubexen/crds";
import {
  type EventRecorder,
  type Informer,
  type KubeClient,
  type Logger,
  objectKey,
  type ReconcileResult,
} from "@kubexen/sdk";
import { isFenced } from "./fencing.ts";
import type { OperatorMetrics } from "./metrics.ts";
import { isFinishedPhase } from "./migration-plan.ts";
import { releaseDomain } from "./release.ts";

export const HA_MANAGER = "kubexen-ha";

export type HaAction = { kind: "none" } | { kind: "restart" } | { kind: "markFailed"; why: string };

/** What HA does with one domain bound to a fenced host. Pure. */
export function haAction(xd: XenDomain, migrating: boolean): HaAction {
  if (xd.metadata.deletionTimestamp || migrating) return { kind: "none" };
  const s = xd.status;
  if (!s?.host) return { kind: "none" };
  switch (xd.spec.runStrategy) {
    case "Always":
      return { kind: "restart" };
    case "RerunOnFailure":
      return s.phase === "Succeeded" ? { kind: "none" } : { kind: "restart" };
    case "Halted":
      return { kind: "none" };
    case "Once":
    case "Manual":
      return { kind: "markFailed", why: `runStrategy ${xd.spec.runStrategy} does not restart it elsewhere` };
  }
}

export interface HaDeps {
  client: KubeClient;
  hosts: Informer<XenHost>;
  domains: Informer<XenDomain>;
  migrations: Informer<XenMigration>;
  events: EventRecorder;
  log: Logger;
  metrics?: OperatorMetrics;
}

export class HighAvailability {
  private readonly d: HaDeps;
  constructor(d: HaDeps) {
    this.d = d;
  }

  /** Reconciles one host: acts on its domains when it is fenced. */
  async reconcile(hostName: string): Promise<ReconcileResult> {
    const host = this.d.hosts.get(hostName);
    if (!isFenced(host)) return undefined;
    const migrating = new Set(
      this.d.migrations
        .list()
        .filter((m) => !isFinishedPhase(m.status?.phase) && m.status?.domainUUID)
        .map((m) => m.status?.domainUUID),
    );
    let waiting = false;
    for (const xd of this.d.domains.list()) {
      if (xd.status?.host !== hostName) continue;
      const busy = !!xd.status.uuid && migrating.has(xd.status.uuid);
      waiting ||= busy;
      const a = haAction(xd, busy);
      if (a.kind === "restart") await this.release(xd, hostName);
      else if (a.kind === "markFailed") await this.markFailed(xd, hostName, a.why);
    }
    // Migrations of its domains settle first; look again after them.
    return waiting ? { requeueAfterMs: 2000 } : undefined;
  }

  private async release(xd: XenDomain, hostName: string): Promise<void> {
    const message = `${hostName} was fenced: restarting elsewhere`;
    await releaseDomain(this.d.client, xd, "HostFenced", message);
    this.d.metrics?.haRestarts.inc({ result: "restarted" });
    this.d.log.warn({ domain: objectKey(xd), host: hostName }, "host fenced: released the domain to restart elsewhere");
    await this.d.events.record(xd, "Warning", "HostFenced", "Restart", message);
  }

  private async markFailed(xd: XenDomain, hostName: string, why: string): Promise<void> {
    if (xd.status?.phase === "Failed" && xd.status.state === "absent") return;
    await this.d.client.applyStatus(
      resources.xenDomains,
      {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenDomain",
        metadata: { name: xd.metadata.name, namespace: xd.metadata.namespace },
        status: { phase: "Failed", state: "absent" },
      },
      HA_MANAGER,
    );
    this.d.metrics?.haRestarts.inc({ result: "left" });
    await this.d.events.record(xd, "Warning", "HostFenced", "Restart", `${hostName} was fenced; ${why}`);
  }
}
