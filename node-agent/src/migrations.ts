// The agent's part of a live migration. The operator drives the XenMigration
// through its phases; the two agents answer through conditions under their
// own field managers:
//   PreparingTarget: the target checks it can take the domain (memory, guest
//     type) and sets TargetReady; its migration server now accepts exactly this
//     migration from the source's certificate, with the migration's token.
//   Transferring: the source connects, sends (progress in status), and sets
//     SourceDone; the target sets TargetRunning once the domain runs there.
// The operator hands the XenDomain to the target only when both reported.
import type { TLSSocket } from "node:tls";
import { resources, statusApply, type XenDomain, type XenHost, type XenMigration } from "@kubexen/crds";
import { type Hypervisor, MigrationError } from "@kubexen/hypervisor";
import {
  type EventRecorder,
  errorMessage,
  getCondition,
  type Informer,
  isNotFound,
  type KubeClient,
  type Logger,
  objectKey,
  type ReconcileResult,
  rfc3339,
  setCondition,
} from "@kubexen/sdk";
import { describeViolations, FORBIDDEN_HOST_RESOURCE, type HostPolicy } from "./confine.ts";
import { sourceStart, targetSettle } from "./migration-settle.ts";
import { hostResourceViolations } from "./paths.ts";
import { type Admission, connectMigration, type TlsFiles, throttled } from "./transport.ts";

export interface MigrationRoleDeps {
  host: string;
  client: KubeClient;
  hv: Hypervisor;
  outgoing: Informer<XenMigration>;
  incoming: Informer<XenMigration>;
  /** This host's certificate and key in force (renewed over time) and the migration CA. */
  tls: () => TlsFiles;
  fieldManager: string;
  /** This host's dom0 directories and bridges: an incoming domain must fit them as a created one must. */
  policy: HostPolicy;
  events?: EventRecorder;
  log: Logger;
}

const ACTIVE = new Set(["PreparingTarget", "Transferring"]);
const conds = (m: XenMigration) => m.status?.conditions ?? [];

export class MigrationRoles implements Admission {
  private readonly d: MigrationRoleDeps;
  private readonly sending = new Map<string, AbortController>();
  /** Migrations (by UID) this process already sent or tried: never twice, whatever a stale cache shows. */
  private readonly sent = new Set<string>();
  private readonly receiving = new Set<string>();

  constructor(d: MigrationRoleDeps) {
    this.d = d;
  }

  /** Admission for the migration server: is this migration assigned to us, and ready? */
  lookup(name: string): ReturnType<Admission["lookup"]> {
    const m = this.d.incoming.get(name);
    if (!m?.status?.sourceHost || !m.status.targetHost || !m.metadata.uid) return undefined;
    const ready = getCondition(conds(m), "TargetReady")?.status === "True";
    return {
      uid: m.metadata.uid,
      source: m.status.sourceHost,
      target: m.status.targetHost,
      acceptable: ready && ACTIVE.has(m.status.phase ?? ""),
    };
  }

  /** A stream the server admitted: receive the domain from it. */
  accept(name: string, stream: TLSSocket): void {
    if (this.receiving.has(name)) {
      stream.destroy();
      return;
    }
    this.receiving.add(name);
    void (async () => {
      const m = this.d.incoming.get(name);
      try {
        const dom = await this.d.hv
          .migrateReceive(stream, { uuid: m?.status?.domainUUID })
          .catch(async (err: unknown) => {
            await this.receiveFailed(name, m, err);
            return undefined;
          });
        // The domain runs here: a report the API server does not take is retried, never taken for a failed receive.
        if (dom && m)
          await this.untilStored(name, "TargetRunning", () =>
            this.condition(m, "TargetRunning", "True", "Running", `domid ${dom.domid} on ${this.d.host}`),
          );
      } finally {
        this.receiving.delete(name);
      }
    })();
  }

  private async receiveFailed(name: string, m: XenMigration | undefined, err: unknown): Promise<void> {
    this.d.log.warn({ migration: name, err: errorMessage(err) }, "receiving a migration failed");
    // "False" must mean "not running here": the operator resumes the source copy on it.
    const uuid = m?.status?.domainUUID;
    const left = uuid ? await this.d.hv.getDomain(uuid).catch(() => undefined) : undefined;
    if (left && uuid) {
      const cleared = await this.d.hv.destroy(uuid).then(
        () => true,
        (e: unknown) => {
          this.d.log.error({ migration: name, err: errorMessage(e) }, "cannot remove a half-received domain");
          return false;
        },
      );
      if (!cleared) return; // Say nothing rather than something unsafe: the migration stays unresolved.
    }
    if (m)
      await this.untilStored(name, "TargetRunning", () =>
        this.condition(m, "TargetRunning", "False", "ReceiveFailed", errorMessage(err)),
      );
  }

  /**
   * Retries a report until the API server takes it (an outage, a cut), for up to 10 minutes. A
   * migration that no longer exists has nobody to read it: its finalizer holds an unfinished one,
   * so it ended without this report.
   */
  private async untilStored(migration: string, what: string, write: () => Promise<void>): Promise<void> {
    const end = Date.now() + 600_000;
    for (let delay = 500; ; delay = Math.min(delay * 2, 5000)) {
      try {
        return await write();
      } catch (err) {
        if (isNotFound(err)) {
          this.d.log.info({ migration, what }, "the migration is gone; nothing to report to");
          return;
        }
        if (Date.now() > end) {
          this.d.log.error({ migration, what, err: errorMessage(err) }, "gave up reporting; a restart reports again");
          return;
        }
        this.d.log.warn({ migration, what, err: errorMessage(err) }, "report not stored; retrying");
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const out = this.d.outgoing.get(key);
    const inc = this.d.incoming.get(key);
    if (inc && inc.status?.targetHost === this.d.host) {
      await this.asTarget(inc);
      await this.settleAsTarget(inc);
    }
    if (out && out.status?.sourceHost === this.d.host) await this.asSource(out);
    const phase = (out ?? inc)?.status?.phase;
    const abortAsked = out && getCondition(conds(out), "AbortRequested")?.status === "True";
    if (phase === "Aborted" || phase === "Failed" || abortAsked) this.sending.get(key)?.abort();
    if (out && out.status?.sourceHost === this.d.host) await this.settleLeftover(out);
    return undefined;
  }

  /**
   * After an ambiguous handover the source keeps a paused --migratedaway copy
   * that only the cluster's verdict may settle: destroyed once the migration
   * Succeeded (the target runs it), resumed once it Failed or was Aborted
   * (the operator decides that only when the target cannot be running it).
   */
  private async settleLeftover(m: XenMigration): Promise<void> {
    const phase = m.status?.phase;
    const uuid = m.status?.domainUUID;
    if (!uuid || (phase !== "Succeeded" && phase !== "Failed" && phase !== "Aborted") || this.sending.has(objectKey(m)))
      return;
    const dom = await this.d.hv.getDomain(uuid);
    if (dom?.migration !== "migratedaway") return;
    if (phase === "Succeeded") {
      await this.d.hv.destroy(uuid);
      this.d.log.info(
        { migration: objectKey(m), uuid },
        "destroyed the paused source copy: the target runs the domain",
      );
    } else {
      await this.d.hv.resumeMigratedAway(uuid);
      this.d.log.info({ migration: objectKey(m), uuid }, "resumed the paused source copy: the target does not run it");
    }
  }

  /** The target's copy outside a live stream of this process (targetSettle): reported, or removed. */
  private async settleAsTarget(m: XenMigration): Promise<void> {
    const uuid = m.status?.domainUUID;
    const key = objectKey(m);
    // A stream of this process fills the copy: nothing to settle, and no xl to run. The source
    // reports progress every second, and each report would otherwise cost the receiving dom0 an
    // xl process while it is busiest.
    if (!uuid || this.receiving.has(key)) return;
    const dom = await this.d.hv.getDomain(uuid);
    const s = targetSettle({
      phase: m.status?.phase,
      targetReported: !!getCondition(conds(m), "TargetRunning"),
      sourceReported: !!getCondition(conds(m), "SourceDone"),
      receiving: this.receiving.has(key),
      dom,
    });
    if (s.kind === "none") return;
    this.d.log.info({ migration: key, uuid, settle: s.kind }, "settling a migration's copy outside a stream");
    if (s.kind === "reportRunning")
      return this.condition(m, "TargetRunning", "True", "Running", `domid ${dom?.domid} on ${this.d.host}`);
    if (s.kind === "reportAbsent")
      return this.condition(m, "TargetRunning", "False", "NotHere", `the domain is not on ${this.d.host}`);
    await this.d.hv.destroy(uuid);
    if (s.report)
      await this.condition(
        m,
        "TargetRunning",
        "False",
        "ReceiveFailed",
        `the receive ended with the agent's restart; its paused --incoming copy on ${this.d.host} is removed`,
      );
  }

  private async asTarget(m: XenMigration): Promise<void> {
    if (m.status?.phase !== "PreparingTarget" || getCondition(conds(m), "TargetReady")) return;
    // Fresh facts: free memory changes with every domain started here.
    const info = await this.d.hv.hostInfo();
    const need = m.status.memoryMiB ?? 0;
    const free = info.freeMemoryMiB;
    const dom = m.status.domainUUID ? await this.d.hv.getDomain(m.status.domainUUID) : undefined;
    if (dom)
      return this.condition(
        m,
        "TargetReady",
        "False",
        "AlreadyHere",
        `a domain with UUID ${dom.uuid} already exists on ${this.d.host}`,
      );
    if (need > free)
      return this.condition(
        m,
        "TargetReady",
        "False",
        "InsufficientMemory",
        `${need} MiB needed, ${free} MiB free on ${this.d.host}`,
      );
    if (info.liveMigratable.length === 0)
      return this.condition(
        m,
        "TargetReady",
        "False",
        "NotMigratable",
        `${this.d.host} cannot receive live migrations`,
      );
    // The stream would attach the domain's disks and bridges here: this host's policy decides,
    // before the migration server admits anything. Read fresh: the domain is bound to the source.
    const refused = await this.refusal(m);
    if (refused) {
      await this.d.events?.record(m, "Warning", FORBIDDEN_HOST_RESOURCE, "PrepareTarget", refused);
      return this.condition(m, "TargetReady", "False", FORBIDDEN_HOST_RESOURCE, refused);
    }
    await this.condition(m, "TargetReady", "True", "Ready", `${this.d.host} accepts the stream (${free} MiB free)`);
  }

  /** Why this host refuses the migrating domain's dom0 resources; undefined when it takes them. */
  private async refusal(m: XenMigration): Promise<string | undefined> {
    const xd = await this.d.client.getOrUndefined<XenDomain>(resources.xenDomains, m.spec.domain, m.metadata.namespace);
    // Nothing to check against is no reason to let a stream in.
    if (!xd || xd.status?.uuid !== m.status?.domainUUID)
      return `XenDomain ${m.metadata.namespace}/${m.spec.domain} with UUID ${m.status?.domainUUID} not found: its host resources cannot be checked`;
    const violations = await hostResourceViolations(xd.spec, this.d.policy);
    if (!violations.length) return undefined;
    this.d.log.warn(
      {
        migration: objectKey(m),
        domain: objectKey(xd),
        violations: violations.map((v) => ({ field: v.field, resolved: v.resolved })),
      },
      "refused an incoming migration: the domain names host resources outside the policy",
    );
    return describeViolations(violations).slice(0, 8192);
  }

  private async asSource(m: XenMigration): Promise<void> {
    const key = objectKey(m);
    if (
      m.status?.phase !== "Transferring" ||
      getCondition(conds(m), "SourceDone") ||
      this.sending.has(key) ||
      this.sent.has(m.metadata.uid ?? "")
    )
      return;
    const { sourceHost, targetHost, domainUUID } = m.status;
    if (!sourceHost || !targetHost || !domainUUID || !m.metadata.uid) return;
    if (getCondition(conds(m), "AbortRequested")?.status === "True")
      return this.condition(m, "SourceDone", "False", "SendFailed", "aborted before sending; the domain stays here");
    const start = sourceStart(await this.d.hv.getDomain(domainUUID), this.d.host);
    if (start.kind === "ambiguous") {
      this.sent.add(m.metadata.uid);
      return this.condition(m, "SourceDone", "False", "Ambiguous", start.why);
    }
    const abort = new AbortController();
    this.sending.set(key, abort);
    this.sent.add(m.metadata.uid);
    void (async () => {
      let lastWrite = 0;
      try {
        const target = await this.d.client.get<XenHost>(resources.xenHosts, targetHost);
        const endpoint = target.status?.migrationEndpoint;
        if (!endpoint) throw new Error(`XenHost ${targetHost} advertises no migration endpoint`);
        const sock = await connectMigration({
          endpoint,
          tls: this.d.tls(),
          targetHost,
          hello: {
            migration: key,
            uid: m.metadata.uid ?? "",
            // The operator's signed authorisation: without it the target refuses the stream.
            token: m.status?.transferToken ?? "",
          },
        });
        // The operator resolved the limit in force (migration, domain, policy) into status.
        const bw = m.status?.bandwidthMiBps || m.spec.bandwidthMiBps || undefined;
        const stream = bw ? throttled(sock, bw * 2 ** 20) : sock;
        const stats = await this.d.hv.migrateSend(domainUUID, stream, {
          bandwidthMiBps: bw,
          autoConverge: m.status?.autoConverge ?? false,
          signal: abort.signal,
          onProgress: (p) => {
            if (Date.now() - lastWrite < 1000) return;
            lastWrite = Date.now();
            void this.progress(m, {
              bytesTransferred: p.bytesSent,
              rounds: p.round,
              dirtyPages: p.dirtyPages,
              throttlePercent: p.throttle ? Math.round(p.throttle * 100) : undefined,
            }).catch(() => {});
          },
        });
        // The stats and the report in one write: the report frees this host's stream for the next.
        // The domain has left: a report the API server does not take is retried, never taken for a failed send.
        await this.untilStored(key, "SourceDone", () =>
          this.condition(m, "SourceDone", "True", "Sent", `the domain left ${sourceHost}`, {
            bytesTransferred: stats.bytes,
            rounds: stats.rounds,
            downtimeMs: Math.round(stats.downtimeMs),
            totalTimeMs: Math.round(stats.totalMs),
            throttlePercent: stats.throttle ? Math.round(stats.throttle * 100) : undefined,
            progressTime: rfc3339(),
          }),
        );
      } catch (err) {
        const ambiguous = err instanceof MigrationError && err.ambiguous;
        this.d.log.warn({ migration: key, err: errorMessage(err), ambiguous }, "sending a migration failed");
        // Lost, this report would leave the migration waiting on this host until its timeout.
        await this.untilStored(key, "SourceDone", () =>
          this.condition(m, "SourceDone", "False", ambiguous ? "Ambiguous" : "SendFailed", errorMessage(err)),
        );
      } finally {
        this.sending.delete(key);
      }
      // The verdict may have come while this stream still ran, when settling had to wait for it.
      const latest = this.d.outgoing.get(key);
      if (latest)
        await this.settleLeftover(latest).catch((err: unknown) =>
          this.d.log.warn(
            { migration: key, err: errorMessage(err) },
            "settling the source copy failed; retried on the next change",
          ),
        );
    })();
  }

  private async progress(m: XenMigration, fields: Record<string, number | undefined>): Promise<void> {
    const status = { ...fields, progressTime: rfc3339() };
    await this.d.client.applyStatus(
      resources.xenMigrations,
      statusApply("XenMigration", { name: m.metadata.name, namespace: m.metadata.namespace }, status),
      `${this.d.fieldManager}-progress`,
    );
  }

  private async condition(
    m: XenMigration,
    type: string,
    status: "True" | "False",
    reason: string,
    message: string,
    fields: Record<string, number | string | undefined> = {},
  ): Promise<void> {
    const mine = conds(m).filter((c) => c.type === type);
    const conditions = setCondition(mine, {
      type,
      status,
      reason,
      message: message.slice(0, 4000),
      observedGeneration: m.metadata.generation,
    });
    await this.d.client.applyStatus(
      resources.xenMigrations,
      statusApply(
        "XenMigration",
        { name: m.metadata.name, namespace: m.metadata.namespace },
        { ...fields, conditions },
      ),
      `${this.d.fieldManager}-${type}`,
    );
  }
}
