// The maintenance controller: a XenMaintenance cordons its host (placement
// treats a host under maintenance as closed) and drains it by each domain's
// evictionStrategy, through XenMigrations (reason Maintenance, labelled with
// the maintenance) and restarts (status.eviction, then release). Deleting it
// cancels: queued migrations are withdrawn, running ones finish, evictions
// not yet carried out are called off, and the host opens again.
import { createHash } from "node:crypto";
import {
  newObject,
  quantityMiB,
  reportedMigratability,
  resources,
  statusApply,
  type XenDomain,
  type XenHost,
  type XenMaintenance,
  type XenMigration,
  type XenMigrationPolicy,
} from "@kubexen/crds";
import {
  addFinalizer,
  type EventRecorder,
  getCondition,
  hasFinalizer,
  type Informer,
  jsonEqual,
  type KubeClient,
  type Logger,
  markReady,
  markReconciling,
  markStalled,
  objectKey,
  type ReconcileResult,
  removeFinalizer,
  rfc3339,
} from "@kubexen/sdk";
import type { OperatorContext } from "./context.ts";
import { admitMaintenances, type DrainDomain, drainActions, drainReport } from "./maintenance-plan.ts";
import type { OperatorMetrics } from "./metrics.ts";
import { isFinishedPhase } from "./migration-plan.ts";
import { releaseDomain } from "./release.ts";

export const MAINTENANCE_FINALIZER = "kubexen.io/maintenance";
export const MAINTENANCE_MANAGER = "kubexen-maintenance";
/** Migrations that have not started sending: a cancelled maintenance withdraws them. */
const STAGED_OR_QUEUED = new Set(["Pending", "Scheduling", "PreparingTarget"]);

export const MAINTENANCE_LABEL = "kubexen.io/maintenance";

export interface MaintenanceDeps {
  client: KubeClient;
  maintenances: Informer<XenMaintenance>;
  domains: Informer<XenDomain>;
  hosts: Informer<XenHost>;
  migrations: Informer<XenMigration>;
  policies: Informer<XenMigrationPolicy>;
  events: EventRecorder;
  log: Logger;
  metrics?: OperatorMetrics;
}

const AT_REST = new Set(["Stopped", "Succeeded", "Failed", "Saved"]);

/** A drain's migration name: stable per maintenance (by UID), domain and attempt. */
export function drainMigrationName(m: XenMaintenance, domain: string, attempt: number): string {
  const id = createHash("sha256").update(`${m.metadata.uid}/${domain}`).digest("hex").slice(0, 8);
  const prefix = `drain-${m.metadata.name}`.slice(0, 200).replace(/[.-]+$/, "");
  return `${prefix}-${id}-${attempt}`;
}

export class MaintenanceController {
  private readonly d: MaintenanceDeps;
  constructor(d: MaintenanceDeps) {
    this.d = d;
  }

  /** The maintenance of a host, if any (to map domain and host events to it). */
  forHost(host: string | undefined): string[] {
    if (!host) return [];
    return this.d.maintenances
      .list()
      .filter((m) => m.spec.host === host)
      .map((m) => m.metadata.name ?? "");
  }

  all(): string[] {
    return this.d.maintenances.list().map((m) => m.metadata.name ?? "");
  }

  private by(m: XenMaintenance): string {
    return `XenMaintenance/${m.metadata.name}`;
  }

  private owned(m: XenMaintenance): XenMigration[] {
    return this.d.migrations.list().filter((x) => x.metadata.labels?.[`${MAINTENANCE_LABEL}-uid`] === m.metadata.uid);
  }

  async reconcile(name: string): Promise<ReconcileResult> {
    const m = this.d.maintenances.get(name);
    if (!m) return undefined;
    if (m.metadata.deletionTimestamp) return this.cancel(m);
    if (!hasFinalizer(m, MAINTENANCE_FINALIZER)) {
      await addFinalizer(this.d.client, resources.xenMaintenances, m, MAINTENANCE_FINALIZER);
      return { requeueAfterMs: 10 };
    }
    const host = m.spec.host;
    if (!this.d.hosts.get(host))
      return this.report(m, { phase: "Blocked", message: `XenHost ${host} does not exist` }, "Stalled");

    // Capacity: may this maintenance drain now?
    const admission = this.admission().get(name);
    if (admission && !admission.admitted) {
      await this.report(m, { phase: "Waiting", message: admission.message }, "Reconciling");
      return { requeueAfterMs: 10_000 };
    }

    await this.sweepEvictions(m);
    const mine = this.d.domains.list().filter((x) => x.status?.host === host && !x.metadata.deletionTimestamp);
    const owned = this.owned(m);
    const actions = drainActions(
      mine.map((x) => this.drainView(x, m)),
      owned.map((x) => ({
        domainKey: `${x.metadata.namespace}/${x.spec.domain}`,
        phase: x.status?.phase ?? "Pending",
        failureReason: x.status?.failureReason,
      })),
    );
    const restartedDomains = [...(m.status?.restartedDomains ?? [])];
    for (const a of actions) {
      const xd = this.d.domains.get(a.domainKey);
      if (!xd) continue;
      if (a.kind === "migrate") await this.migrate(m, xd, a);
      else if (a.kind === "evict") await this.evict(m, xd, a.why);
      else if (a.kind === "release") {
        const ref = { namespace: xd.metadata.namespace ?? "", name: xd.metadata.name ?? "" };
        if (!restartedDomains.some((r) => r.namespace === ref.namespace && r.name === ref.name)) {
          // Recorded first: a crash between the two writes repeats the release, never loses the count.
          restartedDomains.push(ref);
          await this.record(m, restartedDomains);
        }
        await releaseDomain(
          this.d.client,
          xd,
          "Evicted",
          `evicted from ${host} by ${this.by(m)}: restarting elsewhere`,
        );
        await this.clearEviction(xd);
        this.d.metrics?.evictions.inc({ action: "restart" });
        await this.d.events.record(
          xd,
          "Normal",
          "Evicted",
          "Restart",
          `stopped on ${host} for maintenance; placed again`,
        );
      }
    }
    const r = drainReport({
      host,
      remainingMiB: mine.map((x) => quantityMiB(x.spec.memory)),
      actions,
      migrations: owned.map((x) => ({
        domain: x.spec.domain,
        phase: x.status?.phase,
        memoryMiB: x.status?.memoryMiB ?? 0,
        seconds:
          (Date.parse(x.status?.completionTime ?? "") -
            Date.parse(x.status?.phaseTimestamps?.Scheduling ?? x.metadata.creationTimestamp ?? "")) /
          1000,
      })),
      restartedDomains,
      previous: {
        total: m.status?.total,
        startTime: m.status?.startTime,
        completionTime: m.status?.completionTime,
      },
      policy: this.d.policies.get("default")?.spec,
      nowMs: Date.now(),
    });
    await this.report(m, r.status, r.mode);
    return { requeueAfterMs: r.requeueAfterMs };
  }

  /** Which maintenances may drain now, from the Ready hosts' capacity and what the domains need. */
  private admission() {
    const maints = this.d.maintenances.list().filter((x) => !x.metadata.deletionTimestamp);
    const hosts = this.d.hosts.list().map((h) => ({
      name: h.metadata.name ?? "",
      ready: getCondition(h.status?.conditions, "Ready")?.status === "True",
      memoryMiB: h.status?.allocatable?.memoryMiB ?? 0,
      cpus: h.status?.allocatable?.cpus ?? 0,
    }));
    let memoryMiB = 0;
    let vcpus = 0;
    for (const x of this.d.domains.list()) {
      if (!x.status?.host || AT_REST.has(x.status.phase ?? "") || x.spec.runStrategy === "Halted") continue;
      memoryMiB += quantityMiB(x.spec.memory);
      vcpus += x.spec.vcpus;
    }
    return admitMaintenances(
      maints.map((x) => ({
        name: x.metadata.name ?? "",
        host: x.spec.host,
        createdMs: Date.parse(x.metadata.creationTimestamp ?? "") || 0,
        admitted: ["Draining", "Drained", "Blocked"].includes(x.status?.phase ?? ""),
      })),
      hosts,
      { memoryMiB, vcpus },
    );
  }

  private drainView(x: XenDomain, m: XenMaintenance): DrainDomain {
    const { migratable, why } = reportedMigratability(x.status);
    return {
      key: objectKey(x),
      memoryMiB: quantityMiB(x.spec.memory),
      phase: x.status?.phase ?? "Pending",
      state: x.status?.state ?? "absent",
      evictionStrategy: x.spec.evictionStrategy,
      runStrategy: x.spec.runStrategy,
      migratable,
      notMigratableWhy: why,
      evictedByThis: x.status?.eviction?.by === this.by(m),
      saved: !!x.status?.savedImage,
    };
  }

  private async migrate(m: XenMaintenance, xd: XenDomain, a: { attempt: number; priority: number }): Promise<void> {
    const name = drainMigrationName(m, xd.metadata.name ?? "", a.attempt);
    if (this.d.migrations.get(`${xd.metadata.namespace}/${name}`)) return;
    try {
      await this.d.client.create(
        resources.xenMigrations,
        newObject(
          "XenMigration",
          {
            name,
            namespace: xd.metadata.namespace,
            labels: { [MAINTENANCE_LABEL]: m.metadata.name ?? "", [`${MAINTENANCE_LABEL}-uid`]: m.metadata.uid ?? "" },
          },
          { domain: xd.metadata.name ?? "", reason: "Maintenance", priority: a.priority },
        ),
      );
      this.d.metrics?.evictions.inc({ action: "migrate" });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 409) throw err;
    }
  }

  private async evict(m: XenMaintenance, xd: XenDomain, why: string): Promise<void> {
    await this.d.client.applyStatus(
      resources.xenDomains,
      statusApply(
        "XenDomain",
        { name: xd.metadata.name, namespace: xd.metadata.namespace },
        { eviction: { by: this.by(m), reason: why, time: rfc3339() } },
      ),
      MAINTENANCE_MANAGER,
    );
    await this.d.events.record(
      xd,
      "Normal",
      "Evicting",
      "Restart",
      `${this.by(m)}: ${why}; stopping it to start elsewhere`,
    );
  }

  private async clearEviction(xd: XenDomain): Promise<void> {
    // Applying nothing under our manager drops the field it owned.
    await this.d.client.applyStatus(
      resources.xenDomains,
      statusApply("XenDomain", { name: xd.metadata.name, namespace: xd.metadata.namespace }, {}),
      MAINTENANCE_MANAGER,
    );
  }

  /** Evictions of ours on domains that already left the host (a restart between release and clear). */
  private async sweepEvictions(m: XenMaintenance): Promise<void> {
    for (const x of this.d.domains.list())
      if (x.status?.eviction?.by === this.by(m) && x.status.host !== m.spec.host) await this.clearEviction(x);
  }

  private async cancel(m: XenMaintenance): Promise<ReconcileResult> {
    if (!hasFinalizer(m, MAINTENANCE_FINALIZER)) return undefined;
    const owned = this.owned(m);
    let withdrawn = 0;
    const gone = new Set<string>();
    for (const x of owned) {
      // Queued or staged: nothing sent yet, so it can be withdrawn; only as the operator last saw
      // it (a migration that has just started sending is left to finish).
      if (!STAGED_OR_QUEUED.has(x.status?.phase ?? "Pending")) continue;
      const removed = await this.d.client
        .delete(resources.xenMigrations, x.metadata.name ?? "", x.metadata.namespace, {
          uid: x.metadata.uid,
          resourceVersion: x.metadata.resourceVersion,
        })
        .then(
          () => true,
          (err: { statusCode?: number }) => {
            if (err.statusCode === 404) return true;
            if (err.statusCode === 409) return false;
            throw err;
          },
        );
      if (removed) {
        withdrawn++;
        gone.add(x.metadata.uid ?? "");
      }
    }
    // Evictions not yet carried out are called off: those domains stay (or start again) where they are.
    for (const x of this.d.domains.list())
      if (x.status?.eviction?.by === this.by(m) && x.status.host === m.spec.host) await this.clearEviction(x);
    const running = owned.filter((x) => !isFinishedPhase(x.status?.phase) && !gone.has(x.metadata.uid ?? ""));
    if (running.length > 0) {
      await this.report(
        m,
        {
          phase: "Cancelling",
          message: `withdrew ${withdrawn} queued migrations; ${running.length} running ones finish first`,
        },
        "Reconciling",
      );
      return { requeueAfterMs: 1000 };
    }
    await this.d.events.record(
      m,
      "Normal",
      "Cancelled",
      "Cancel",
      `maintenance of ${m.spec.host} ended; the host takes domains again`,
    );
    await removeFinalizer(this.d.client, resources.xenMaintenances, m, MAINTENANCE_FINALIZER);
    this.d.log.info({ maintenance: m.metadata.name, host: m.spec.host }, "maintenance ended: host uncordoned");
    return undefined;
  }

  /** Writes the list of restarted domains alone, under its own field manager so nothing else is dropped. */
  private async record(m: XenMaintenance, restartedDomains: Array<{ namespace: string; name: string }>): Promise<void> {
    await this.d.client.applyStatus(
      resources.xenMaintenances,
      statusApply(
        "XenMaintenance",
        { name: m.metadata.name },
        { restartedDomains, restarted: restartedDomains.length },
      ),
      `${MAINTENANCE_MANAGER}-record`,
    );
  }

  private async report(
    m: XenMaintenance,
    fields: Record<string, unknown>,
    mode: "Ready" | "Reconciling" | "Stalled",
  ): Promise<ReconcileResult> {
    const message = String(fields.message ?? "");
    const gen = m.metadata.generation;
    const mark = { Ready: markReady, Reconciling: markReconciling, Stalled: markStalled }[mode];
    const conds = mark(m.status?.conditions, gen, String(fields.phase), message);
    const status = { ...(m.status ?? {}), ...fields, observedGeneration: gen, conditions: conds };
    for (const k of Object.keys(status) as Array<keyof typeof status>) if (status[k] === undefined) delete status[k];
    if (m.status && jsonEqual(m.status, status)) return undefined;
    const written = await this.d.client.applyStatus(
      resources.xenMaintenances,
      statusApply("XenMaintenance", { name: m.metadata.name }, status),
      MAINTENANCE_MANAGER,
    );
    if (m.status?.phase !== fields.phase)
      await this.d.events.record(
        m,
        fields.phase === "Blocked" || fields.phase === "Waiting" ? "Warning" : "Normal",
        String(fields.phase),
        "Drain",
        message,
      );
    await this.d.maintenances.waitForWrite(m.metadata.name ?? "", m.metadata.resourceVersion, written);
    return undefined;
  }
}

/**
 * Maintenance: each XenMaintenance; the domains on its host (the host a domain left counts too:
 * its leaving may be what empties it), its migrations, and host capacity (whether a waiting
 * maintenance may start).
 */
export function setupMaintenance(c: OperatorContext): MaintenanceController {
  const maint = new MaintenanceController({
    client: c.mgr.client,
    maintenances: c.maintenances,
    domains: c.domains,
    hosts: c.hosts,
    migrations: c.migrations,
    policies: c.policies,
    events: c.mgr.events,
    log: c.log,
    metrics: c.metrics,
  });
  c.mgr
    .controller("maintenance", (k) => maint.reconcile(k))
    .for(c.maintenances)
    .watches(c.domains, (d) => maint.forHost(d.status?.host))
    .watches(c.migrations, (m) => m.metadata.labels?.[MAINTENANCE_LABEL])
    .watchesEvents(c.hosts, () => maint.all())
    .complete();
  return maint;
}
