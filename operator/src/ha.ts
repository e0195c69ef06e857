// HA: once a host is Fenced (hosthealth.ts: its fence window has passed, or
// the administrator declared it out of service), its domains are certainly
// not running. Those whose runStrategy wants them running are released from
// the host so the scheduler starts them elsewhere, keeping their UUID and
// MACs; the others are marked Failed where they are. Domains with a live
// migration under way are left to the migration, which settles first.
import { resources, statusApply, type XenDomain, type XenHost, type XenMigration } from "@kubexen/crds";
import {
  type EventRecorder,
  type Informer,
  type KubeClient,
  type Logger,
  objectKey,
  type ReconcileResult,
} from "@kubexen/sdk";
import type { OperatorContext } from "./context.ts";
import { isFenced } from "./fencing.ts";
import { type HaDomain, planFencedHost } from "./ha-plan.ts";
import type { OperatorMetrics } from "./metrics.ts";
import { isFinishedPhase } from "./migration-plan.ts";
import { releaseDomain } from "./release.ts";

export const HA_MANAGER = "kubexen-ha";

/** What HA reads of a XenDomain. */
export function haDomain(xd: XenDomain): HaDomain {
  return {
    key: objectKey(xd),
    deleting: !!xd.metadata.deletionTimestamp,
    host: xd.status?.host,
    uuid: xd.status?.uuid,
    runStrategy: xd.spec.runStrategy,
    phase: xd.status?.phase,
    state: xd.status?.state,
  };
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
    const fenced = isFenced(this.d.hosts.get(hostName));
    if (!fenced) return undefined;
    const bound = this.d.domains.list().filter((xd) => xd.status?.host === hostName);
    const plan = planFencedHost({
      host: hostName,
      fenced,
      domains: bound.map(haDomain),
      migrating: new Set(
        this.d.migrations
          .list()
          .filter((m) => !isFinishedPhase(m.status?.phase) && m.status?.domainUUID)
          .map((m) => m.status?.domainUUID ?? ""),
      ),
    });
    const byKey = new Map(bound.map((xd) => [objectKey(xd), xd]));
    for (const s of plan.steps) {
      const xd = byKey.get(s.key);
      if (!xd) continue;
      if (s.kind === "restart") await this.release(xd, hostName);
      else await this.markFailed(xd, hostName, s.why);
    }
    return plan.requeueAfterMs ? { requeueAfterMs: plan.requeueAfterMs } : undefined;
  }

  private async release(xd: XenDomain, hostName: string): Promise<void> {
    const message = `${hostName} was fenced: restarting elsewhere`;
    await releaseDomain(this.d.client, xd, "HostFenced", message);
    this.d.metrics?.haRestarts.inc({ result: "restarted" });
    this.d.log.warn({ domain: objectKey(xd), host: hostName }, "host fenced: released the domain to restart elsewhere");
    await this.d.events.record(xd, "Warning", "HostFenced", "Restart", message);
  }

  private async markFailed(xd: XenDomain, hostName: string, why: string): Promise<void> {
    await this.d.client.applyStatus(
      resources.xenDomains,
      statusApply(
        "XenDomain",
        { name: xd.metadata.name, namespace: xd.metadata.namespace },
        { phase: "Failed", state: "absent" },
      ),
      HA_MANAGER,
    );
    this.d.metrics?.haRestarts.inc({ result: "left" });
    await this.d.events.record(xd, "Warning", "HostFenced", "Restart", `${hostName} was fenced; ${why}`);
  }
}

/** HA: each host; a migration that settles may leave a domain on a fenced host (its source). */
export function setupHighAvailability(c: OperatorContext): HighAvailability {
  const ha = new HighAvailability({
    client: c.mgr.client,
    hosts: c.hosts,
    domains: c.domains,
    migrations: c.migrations,
    events: c.mgr.events,
    log: c.log,
    metrics: c.metrics,
  });
  c.mgr
    .controller("ha", (k) => ha.reconcile(k))
    .for(c.hosts)
    .watchesEvents(c.migrations, (ev) =>
      isFinishedPhase(ev.obj.status?.phase) ? ev.obj.status?.sourceHost : undefined,
    )
    .complete();
  return ha;
}
