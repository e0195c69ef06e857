// The migration controller: drives each XenMigration through its phases with
// migration-plan.ts, choosing targets with the scheduler's filters, and hands
// the XenDomain to the target (status.host) only after both agents reported.
import {
  MIGRATION_TOKEN_SECONDS,
  type MigrationPhase,
  reportedMigratability,
  resources,
  signMigrationToken,
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
  type KubeClient,
  type Logger,
  objectKey,
  type ReconcileResult,
  removeFinalizer,
  rfc3339,
} from "@kubexen/sdk";
import type { OperatorContext } from "./context.ts";
import { isFenced } from "./fencing.ts";
import type { OperatorMetrics } from "./metrics.ts";
import {
  type AbortCause,
  type AdmissionFacts,
  DEFAULT_LIMITS,
  freshest,
  isFinished,
  isFinishedPhase,
  type MigrationLimits,
  type MigrationView,
  mayStream,
  planAdmission,
  step,
} from "./migration-plan.ts";
import { SCHEDULER_MANAGER } from "./scheduler.ts";
import { hostView, placements, request } from "./views.ts";

export const MIGRATION_MANAGER = "kubexen-migration";
/**
 * Held while a migration is unfinished: deleting one mid-transfer asks its source to stop, and the
 * object goes only once the reports say where the domain is (a deleted stream must not strand it).
 */
export const MIGRATION_FINALIZER = "kubexen.io/migration";

export interface MigrationDeps {
  client: KubeClient;
  migrations: Informer<XenMigration>;
  domains: Informer<XenDomain>;
  hosts: Informer<XenHost>;
  maintenances: Informer<XenMaintenance>;
  policies: Informer<XenMigrationPolicy>;
  events: EventRecorder;
  log: Logger;
  metrics?: OperatorMetrics;
  /** The migration CA's private key (PEM): the operator alone signs transfer tokens. */
  caKey?: string;
}

/** Why a migration cannot go on without the CA: the target agent accepts no stream without a signed token. */
export const NO_MIGRATION_CA =
  "the operator runs without the migration CA (--migration-ca-cert, --migration-ca-key): it cannot sign the token the target agent requires";

const report = (m: XenMigration, type: string) => {
  const c = getCondition(m.status?.conditions, type);
  return c ? { status: c.status as "True" | "False", reason: c.reason, message: c.message } : undefined;
};

export class MigrationController {
  private readonly d: MigrationDeps;
  private admission: Promise<unknown> = Promise.resolve();
  /**
   * Our phase writes the watch has not delivered yet. Admission counts them, so that the limits hold
   * however far the watch lags behind (waiting for each write to show has a time limit).
   */
  private readonly written = new Map<string, XenMigration>();
  constructor(d: MigrationDeps) {
    this.d = d;
  }

  limits(): MigrationLimits {
    const p = this.d.policies.get("default")?.spec;
    if (!p) return DEFAULT_LIMITS;
    return {
      cluster: p.parallelMigrationsPerCluster,
      outboundPerHost: p.parallelOutboundMigrationsPerHost,
      inboundPerHost: p.parallelInboundMigrationsPerHost,
      completionTimeoutPerGiB: p.completionTimeoutPerGiB,
      progressTimeoutSeconds: p.progressTimeoutSeconds,
    };
  }

  private domainOf(m: XenMigration): XenDomain | undefined {
    return this.d.domains.get(`${m.metadata.namespace}/${m.spec.domain}`);
  }

  /** A migration as last written by us or seen by the watch, whichever is further along. */
  private current(key: string): XenMigration | undefined {
    const w = this.written.get(key);
    const m = freshest(this.d.migrations.get(key), w);
    if (w && m !== w) this.written.delete(key); // Seen, superseded, or gone.
    return m;
  }

  /** Every migration as `current` gives it: what admission and streaming decide from. */
  private currentViews(): MigrationView[] {
    for (const k of this.written.keys()) if (!this.d.migrations.get(k)) this.written.delete(k);
    return this.d.migrations
      .keys()
      .map((k) => this.current(k))
      .filter((m): m is XenMigration => !!m)
      .map((m) => this.view(m));
  }

  view(m: XenMigration): MigrationView {
    const s = m.status;
    const xd = this.domainOf(m);
    return {
      key: objectKey(m),
      domain: `${m.metadata.namespace}/${m.spec.domain}`,
      phase: s?.phase ?? "Pending",
      priority: m.spec.priority,
      createdMs: Date.parse(String(m.metadata.creationTimestamp ?? 0)) || 0,
      sourceHost: s?.sourceHost ?? xd?.status?.host,
      targetHost: s?.targetHost,
      requestedTarget: m.spec.targetHost,
      memoryMiB: s?.memoryMiB,
      startedMs: s?.startTime ? Date.parse(s.startTime) : undefined,
      progressMs: s?.progressTime ? Date.parse(s.progressTime) : undefined,
      targetReady: report(m, "TargetReady"),
      sourceDone: report(m, "SourceDone"),
      targetRunning: report(m, "TargetRunning"),
      abortRequested: report(m, "AbortRequested")?.message,
      deleting: !!m.metadata.deletionTimestamp,
      preparingMs: s?.phaseTimestamps?.PreparingTarget ? Date.parse(s.phaseTimestamps.PreparingTarget) : undefined,
      sourceFenced: !!s?.sourceHost && isFenced(this.d.hosts.get(s.sourceHost)),
      targetFenced: !!s?.targetHost && isFenced(this.d.hosts.get(s.targetHost)),
      completionTimeoutPerGiB: m.spec.completionTimeoutPerGiB ?? xd?.spec.migration?.completionTimeoutPerGiB,
      progressTimeoutSeconds: m.spec.progressTimeoutSeconds ?? xd?.spec.migration?.progressTimeoutSeconds,
    };
  }

  /** Migrations waiting for a slot: those ready to send first (a stream waits on them), then those to stage. */
  waiting(): string[] {
    const all = this.d.migrations.list();
    const ready = all.filter(
      (m) => m.status?.phase === "PreparingTarget" && report(m, "TargetReady")?.status === "True",
    );
    const pending = all.filter((m) => (m.status?.phase ?? "Pending") === "Pending");
    return [...ready, ...pending].map(objectKey);
  }

  /** Whether this migration no longer holds a slot: ended, or its source is done sending. */
  freedSlot(m: XenMigration): boolean {
    return isFinishedPhase(m.status?.phase) || report(m, "SourceDone")?.status === "True";
  }

  /** Unfinished migrations from or to `host` (to settle when its fencing changes). */
  involving(host: string): string[] {
    return this.d.migrations
      .list()
      .filter((m) => !isFinished(this.view(m)) && (m.status?.sourceHost === host || m.status?.targetHost === host))
      .map(objectKey);
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const m = this.current(key);
    if (!m) return undefined;
    const v = this.view(m);
    if (isFinished(v)) {
      if (hasFinalizer(m, MIGRATION_FINALIZER))
        await removeFinalizer(this.d.client, resources.xenMigrations, m, MIGRATION_FINALIZER);
      return undefined;
    }
    // Held before anything moves; the update brings it back here. One deleted before this never started.
    if (!hasFinalizer(m, MIGRATION_FINALIZER)) {
      if (!v.deleting) await addFinalizer(this.d.client, resources.xenMigrations, m, MIGRATION_FINALIZER);
      return undefined;
    }
    const limits = this.limits();
    const xd = this.domainOf(m);

    if (v.phase === "Pending" || v.phase === "Scheduling") {
      // Admission and target choice read every migration's state: one at a time, each seeing the last one's write.
      const turn = this.admission.then(() => this.admitOrPlace(m, key));
      this.admission = turn.catch(() => {});
      return turn;
    }
    return this.advance(m, v, xd, limits);
  }

  private async admitOrPlace(m0: XenMigration, key: string): Promise<ReconcileResult> {
    const m = this.current(key) ?? m0;
    const a = planAdmission(this.admissionFacts(m));
    switch (a.kind) {
      case "requeue":
        return { requeueAfterMs: a.afterMs };
      case "fail":
        return this.finish(m, "Failed", a.reason);
      case "abort":
        return this.finish(m, "Aborted", a.reason);
      case "setPhase":
        return this.setPhase(m, a.phase, a.fields);
    }
  }

  /** What admission and target choice decide from, read once from the caches and our own writes. */
  private admissionFacts(m: XenMigration): AdmissionFacts {
    const v = this.view(m);
    const xd = this.domainOf(m);
    const policy = this.d.policies.get("default")?.spec;
    const scheduling = v.phase === "Scheduling";
    const { migratable, why } = reportedMigratability(xd?.status);
    const maint = scheduling ? this.d.maintenances.list() : [];
    return {
      migration: v,
      namespace: m.metadata.namespace ?? "",
      domainName: m.spec.domain,
      bandwidthMiBps: m.spec.bandwidthMiBps,
      domain: xd && {
        host: xd.status?.host,
        phase: xd.status?.phase ?? "Pending",
        uuid: xd.status?.uuid,
        memoryMiB: xd.status?.memoryMiB,
        migratable,
        notMigratableWhy: why,
        bandwidthMiBps: xd.spec.migration?.bandwidthMiBps,
        autoConverge: xd.spec.migration?.autoConverge,
        request: request(xd),
      },
      all: this.currentViews(),
      limits: this.limits(),
      policy: { bandwidthMiBps: policy?.bandwidthMiBps, autoConverge: policy?.autoConverge },
      // Only target choice reads the hosts; the domain's own place on its source does not count against the target.
      hosts: scheduling ? this.d.hosts.list().map((h) => hostView(h, maint)) : [],
      placements: scheduling ? placements(this.d.domains.list().filter((d) => d !== xd)) : new Map(),
    };
  }

  private async advance(
    m: XenMigration,
    v: MigrationView,
    xd: XenDomain | undefined,
    limits: MigrationLimits,
  ): Promise<ReconcileResult> {
    const s = step(v, Date.now(), limits);
    switch (s.kind) {
      case "wait":
        return s.recheckMs ? { requeueAfterMs: s.recheckMs } : undefined;
      case "transfer": {
        // Staged ahead, it sends once a stream is free: checked against every migration's state, one
        // at a time like admission, so that two never take the last stream.
        const key = objectKey(m);
        const turn = this.admission.then(async () => {
          const fresh = this.current(key) ?? m;
          if (fresh.status?.phase !== "PreparingTarget") return { requeueAfterMs: 10 };
          const all = this.currentViews();
          if (!mayStream(all, limits).includes(key)) return { requeueAfterMs: 2000 };
          const { sourceHost, targetHost, domainUUID } = fresh.status ?? {};
          if (!sourceHost || !targetHost || !domainUUID || !fresh.metadata.uid)
            return this.finish(fresh, "Failed", "the migration lost its source, target or domain before the transfer");
          if (!this.d.caKey) return this.finish(fresh, "Failed", NO_MIGRATION_CA);
          const transferToken = signMigrationToken(
            {
              migration: key,
              uid: fresh.metadata.uid,
              source: sourceHost,
              target: targetHost,
              exp: Math.floor(Date.now() / 1000) + MIGRATION_TOKEN_SECONDS,
            },
            this.d.caKey,
          );
          return this.setPhase(fresh, "Transferring", { startTime: rfc3339(), transferToken });
        });
        this.admission = turn.catch(() => {});
        return turn;
      }
      case "fail":
        return this.finish(m, "Failed", s.reason);
      case "abort":
        return this.finish(m, "Aborted", s.reason);
      case "requestAbort":
        return this.requestAbort(m, s.reason, s.cause);
      case "handover": {
        if (xd?.status?.uuid && v.targetHost) {
          // The binding is the scheduler's field: write it under its manager, with the identity it owns.
          await this.d.client.applyStatus(
            resources.xenDomains,
            statusApply(
              "XenDomain",
              { name: xd.metadata.name, namespace: xd.metadata.namespace },
              {
                host: v.targetHost,
                uuid: xd.status.uuid,
                interfaces: xd.status.interfaces,
                conditions: (xd.status.conditions ?? [])
                  .filter((c) => c.type === "Scheduled")
                  .map((c) => ({ ...c, message: `bound to ${v.targetHost} (migrated)` })),
              },
            ),
            SCHEDULER_MANAGER,
          );
        }
        return this.finish(m, "Succeeded", undefined);
      }
    }
  }

  /** Asks the source agent to stop sending; the migration ends on its report (see migration-plan.ts). */
  private async requestAbort(m: XenMigration, reason: string, cause: AbortCause): Promise<ReconcileResult> {
    const written = await this.d.client.applyStatus(
      resources.xenMigrations,
      statusApply(
        "XenMigration",
        { name: m.metadata.name, namespace: m.metadata.namespace },
        {
          conditions: [
            {
              type: "AbortRequested",
              status: "True",
              reason: cause,
              message: reason,
              lastTransitionTime: rfc3339(),
              observedGeneration: m.metadata.generation,
            },
          ],
        },
      ),
      `${MIGRATION_MANAGER}-abort`,
    );
    await this.d.events.record(m, "Warning", "AbortRequested", "Abort", reason);
    await this.d.migrations.waitForWrite(objectKey(m), m.metadata.resourceVersion, written);
    return { requeueAfterMs: 1000 };
  }

  private async setPhase(
    m: XenMigration,
    phase: MigrationPhase,
    fields: Record<string, unknown>,
  ): Promise<ReconcileResult> {
    const s = m.status ?? {};
    const status = {
      phase,
      sourceHost: s.sourceHost,
      targetHost: s.targetHost,
      domainUUID: s.domainUUID,
      memoryMiB: s.memoryMiB,
      bandwidthMiBps: s.bandwidthMiBps,
      autoConverge: s.autoConverge,
      startTime: s.startTime,
      phaseTimestamps: { ...(s.phaseTimestamps ?? {}), [phase]: rfc3339() },
      ...fields,
    };
    const written = await this.d.client.applyStatus<XenMigration>(
      resources.xenMigrations,
      statusApply("XenMigration", { name: m.metadata.name, namespace: m.metadata.namespace }, status),
      MIGRATION_MANAGER,
    );
    this.written.set(objectKey(m), written);
    await this.d.migrations.waitForWrite(objectKey(m), m.metadata.resourceVersion, written);
    return { requeueAfterMs: 10 };
  }

  private async finish(
    m: XenMigration,
    phase: "Succeeded" | "Failed" | "Aborted",
    reason: string | undefined,
  ): Promise<ReconcileResult> {
    await this.setPhase(m, phase, { completionTime: rfc3339(), ...(reason ? { failureReason: reason } : {}) });
    await this.d.events.record(
      m,
      phase === "Succeeded" ? "Normal" : "Warning",
      phase,
      "Migrate",
      reason ?? `moved to ${m.status?.targetHost}`,
    );
    this.d.log.info({ migration: objectKey(m), phase, reason }, "migration ended");
    const mt = this.d.metrics;
    if (mt) {
      mt.migrationsEnded.inc({ result: phase, reason: m.spec.reason });
      const created = Date.parse(String(m.metadata.creationTimestamp ?? ""));
      if (created) mt.migrationDuration.observe({ result: phase }, Math.max(0, (Date.now() - created) / 1000));
      if (phase === "Succeeded") {
        if (m.status?.downtimeMs !== undefined) mt.migrationDowntime.observe(m.status.downtimeMs / 1000);
        if (m.status?.bytesTransferred) mt.migrationBytes.inc(m.status.bytesTransferred);
      }
    }
    return undefined;
  }
}

/**
 * The migration controller: each XenMigration; a migration that ends (or whose source is done
 * sending) and a policy change free slots for the waiting ones; a host's fencing settles the
 * migrations that involve it.
 */
export function setupMigration(c: OperatorContext, caKey: string | undefined): MigrationController {
  const mig = new MigrationController({
    client: c.mgr.client,
    migrations: c.migrations,
    domains: c.domains,
    hosts: c.hosts,
    maintenances: c.maintenances,
    policies: c.policies,
    events: c.mgr.events,
    log: c.log,
    metrics: c.metrics,
    caKey,
  });
  c.mgr
    .controller("migration", (k) => mig.reconcile(k), { concurrency: 4 })
    .watchesEvents(c.migrations, (ev) => [objectKey(ev.obj), ...(mig.freedSlot(ev.obj) ? mig.waiting() : [])])
    .watchesEvents(c.policies, () => mig.waiting())
    .watchesEvents(c.hosts, (ev) => mig.involving(ev.obj.metadata.name ?? ""))
    .complete();
  return mig;
}
