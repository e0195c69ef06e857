// The migration state machine, pure. The controller feeds it each
// XenMigration with what the domain, the hosts and the two agents report;
// it answers with the next step. Safety rule: the domain changes hands only
// when the source reported it gone and the target reported it running; any
// other failure ends with the domain where it was.
import type { DomainPhase, MigrationPhase } from "@kubexen/crds";
import { type DomainRequest, type HostView, type PlacementLookup, place, unfit } from "./placement.ts";

export interface MigrationLimits {
  cluster: number;
  outboundPerHost: number;
  inboundPerHost: number;
  completionTimeoutPerGiB: number;
  progressTimeoutSeconds: number;
}

export const DEFAULT_LIMITS: MigrationLimits = {
  cluster: 5,
  outboundPerHost: 2,
  inboundPerHost: 2,
  completionTimeoutPerGiB: 150,
  progressTimeoutSeconds: 150,
};

export type AgentReport = { status: "True" | "False"; reason: string; message: string } | undefined;

export interface MigrationView {
  key: string;
  /** The XenDomain it moves (namespace/name): one migration per domain at a time. */
  domain: string;
  phase: MigrationPhase;
  priority: number;
  createdMs: number;
  /** Where the domain is (for Pending ones: its current host). */
  sourceHost?: string;
  targetHost?: string;
  requestedTarget?: string;
  memoryMiB?: number;
  startedMs?: number;
  progressMs?: number;
  targetReady?: AgentReport;
  sourceDone?: AgentReport;
  targetRunning?: AgentReport;
  /** The target host has been fenced (its domains are certainly gone). */
  targetFenced?: boolean;
  /** The source host has been fenced. */
  sourceFenced?: boolean;
  /** The operator asked the source to stop sending (a timeout, a deletion), and why. */
  abortRequested?: string;
  /** Deleted: its finalizer holds it until it ends, which it does as soon as that is safe. */
  deleting?: boolean;
  /** When PreparingTarget began. */
  preparingMs?: number;
  /** Per-migration (or per-domain) overrides of the policy's timeouts. */
  completionTimeoutPerGiB?: number;
  progressTimeoutSeconds?: number;
}

const ACTIVE: ReadonlySet<MigrationPhase> = new Set(["Scheduling", "PreparingTarget", "Transferring"]);
export const isActive = (m: MigrationView) => ACTIVE.has(m.phase);
/** Whether a XenMigration's status phase is final (an absent phase is Pending: not final). */
export const isFinishedPhase = (phase: string | undefined) =>
  phase === "Succeeded" || phase === "Failed" || phase === "Aborted";
export const isFinished = (m: MigrationView) => isFinishedPhase(m.phase);

/** How far along a phase is: a migration only moves forward, so a lower rank is an older state. */
export function phaseRank(phase: MigrationPhase): number {
  switch (phase) {
    case "Pending":
      return 0;
    case "Scheduling":
      return 1;
    case "PreparingTarget":
      return 2;
    case "Transferring":
      return 3;
    default:
      return 4;
  }
}

/**
 * Which of two states of one migration to decide from: the cached one, or the one a write of ours
 * returned while the watch has not delivered it yet. The write wins only over an older state of the
 * same object (same uid, earlier phase); a migration deleted and created again under the name is new.
 */
export function freshest<T extends { metadata: { uid?: string }; status?: { phase?: MigrationPhase } }>(
  cached: T | undefined,
  written: T | undefined,
): T | undefined {
  if (!cached || !written || cached.metadata.uid !== written.metadata.uid) return cached;
  const rank = (x: T) => phaseRank(x.status?.phase ?? "Pending");
  return rank(cached) < rank(written) ? written : cached;
}

/** Holding one of its source's transfer streams: told to send, and the source not done. */
export const isStreaming = (m: MigrationView) => m.phase === "Transferring" && m.sourceDone?.status !== "True";
/** Admitted, not yet sending: its target is being chosen or made ready. */
export const isStaged = (m: MigrationView) => m.phase === "Scheduling" || m.phase === "PreparingTarget";

const byRank = (a: MigrationView, b: MigrationView) =>
  b.priority - a.priority || a.createdMs - b.createdMs || a.key.localeCompare(b.key);

/** Greedily picks `candidates` (best rank first) while `holding` plus the picked stay within the limits. */
function pick(candidates: MigrationView[], holding: MigrationView[], limits: MigrationLimits, moving: Set<string>) {
  let clusterFree = limits.cluster - holding.length;
  const perSource = new Map<string, number>();
  for (const m of holding) if (m.sourceHost) perSource.set(m.sourceHost, (perSource.get(m.sourceHost) ?? 0) + 1);
  const picked: string[] = [];
  for (const m of [...candidates].sort(byRank)) {
    if (clusterFree <= 0) break;
    const src = m.sourceHost ?? "";
    if ((perSource.get(src) ?? 0) >= limits.outboundPerHost || moving.has(m.domain)) continue;
    picked.push(m.key);
    moving.add(m.domain);
    perSource.set(src, (perSource.get(src) ?? 0) + 1);
    clusterFree--;
  }
  return picked;
}

/**
 * Which Pending migrations may be staged now (target chosen and made ready ahead of their
 * transfer): highest priority first, then oldest, at most the cluster limit staged in all and the
 * outbound limit per source host, never two of one domain at once. Staging ahead is what lets the
 * next transfer start the moment a stream frees, instead of after several round trips through the
 * API server. (Inbound limits are enforced when the target is chosen, see `targetHasInboundRoom`.)
 */
export function admit(all: MigrationView[], limits: MigrationLimits): string[] {
  const moving = new Set(all.filter(isActive).map((m) => m.domain));
  return pick(
    all.filter((m) => m.phase === "Pending"),
    all.filter(isStaged),
    limits,
    moving,
  );
}

/**
 * Which staged migrations whose target is ready may start sending now: within the cluster limit
 * of transfers in all and the outbound limit per source host, in the same order as admission.
 */
export function mayStream(all: MigrationView[], limits: MigrationLimits): string[] {
  return pick(
    all.filter((m) => m.phase === "PreparingTarget" && m.targetReady?.status === "True"),
    all.filter(isStreaming),
    limits,
    new Set(),
  );
}

/** Whether `host` can take one more incoming migration. */
export function targetHasInboundRoom(
  all: MigrationView[],
  host: string,
  limits: MigrationLimits,
  self?: string,
): boolean {
  return all.filter((m) => isActive(m) && m.targetHost === host && m.key !== self).length < limits.inboundPerHost;
}

/** Seconds a transfer of `memoryMiB` may take in all. */
export function completionTimeoutSeconds(memoryMiB: number, perGiB: number): number {
  return Math.max(perGiB, Math.ceil((memoryMiB / 1024) * perGiB));
}

/** Why the operator asks a source to stop sending (the reason of the AbortRequested condition). */
export type AbortCause = "Timeout" | "Deleted";

export const DELETED_BEFORE_TRANSFER = "the XenMigration was deleted before its transfer began";
export const DELETED_IN_TRANSFER =
  "the XenMigration was deleted during its transfer; the domain stays on its source unless the handover had begun";

export type Step =
  | { kind: "wait"; recheckMs?: number }
  | { kind: "requestAbort"; reason: string; cause: AbortCause }
  | { kind: "transfer" }
  | { kind: "handover" }
  | { kind: "fail"; reason: string }
  | { kind: "abort"; reason: string };

/** The next step of an admitted migration (Scheduling and Pending are the controller's: target choice needs the hosts). */
export function step(m: MigrationView, nowMs: number, limits: MigrationLimits): Step {
  if (m.phase === "PreparingTarget") {
    // Nothing has been sent: ending it now leaves the domain where it is.
    if (m.deleting) return { kind: "abort", reason: DELETED_BEFORE_TRANSFER };
    if (m.sourceFenced || m.targetFenced)
      return { kind: "fail", reason: `${m.sourceFenced ? m.sourceHost : m.targetHost} was fenced before the transfer` };
    if (m.targetReady?.status === "True") return { kind: "transfer" };
    if (m.targetReady?.status === "False")
      return { kind: "fail", reason: `target ${m.targetHost} cannot receive: ${m.targetReady.message}` };
    // Nothing has been sent yet, so giving up here is safe.
    const progressS = m.progressTimeoutSeconds ?? limits.progressTimeoutSeconds;
    if (m.preparingMs !== undefined && nowMs - m.preparingMs > progressS * 1000)
      return { kind: "fail", reason: `target ${m.targetHost} did not get ready within ${progressS} s` };
    return { kind: "wait", recheckMs: 1000 };
  }
  if (m.phase !== "Transferring") return { kind: "wait" };
  if (m.sourceDone?.status === "True" && m.targetRunning?.status === "True") return { kind: "handover" };
  // A fenced host runs nothing: whichever side is left decides.
  if (m.sourceDone?.status === "True" && m.targetFenced) return { kind: "handover" };
  if (m.sourceFenced) {
    if (m.targetRunning?.status === "True") return { kind: "handover" };
    if (m.targetRunning?.status === "False" || m.targetFenced)
      return { kind: "fail", reason: `${m.sourceHost} was fenced and the target does not run the domain` };
    return { kind: "wait", recheckMs: 2000 };
  }
  if (m.sourceDone?.status === "False" && m.sourceDone.reason !== "Ambiguous") {
    if (m.abortRequested) return { kind: "abort", reason: m.abortRequested };
    return {
      kind: "fail",
      reason: `transfer failed, the domain keeps running on ${m.sourceHost}: ${m.sourceDone.message}`,
    };
  }
  if (m.targetRunning?.status === "False" && m.sourceDone?.reason !== "Ambiguous") {
    if (m.abortRequested) return { kind: "abort", reason: m.abortRequested };
    return { kind: "fail", reason: `the target could not start the domain: ${m.targetRunning.message}` };
  }
  // Ambiguous: the source copy is paused and only the target's report (or its fencing) can settle it.
  if (m.sourceDone?.reason === "Ambiguous") {
    // The source copy stays paused until the verdict: the target running it is a success.
    if (m.targetRunning?.status === "True") return { kind: "handover" };
    if (m.targetRunning?.status === "False")
      return {
        kind: "fail",
        reason: `the link broke at the handover and ${m.targetHost} did not start the domain (${m.targetRunning.message}); it resumes on ${m.sourceHost}`,
      };
    if (m.targetFenced)
      return {
        kind: "fail",
        reason: `the link broke at the handover and ${m.targetHost} was fenced; the domain resumes on ${m.sourceHost}`,
      };
    return { kind: "wait", recheckMs: 2000 };
  }
  if (m.targetFenced)
    return { kind: "fail", reason: `${m.targetHost} was fenced; the domain keeps running on ${m.sourceHost}` };
  // A timeout or a deletion only asks the source to stop: the transfer may be past the point of no
  // return, and only the source's report says whether the domain is still its own.
  if (m.abortRequested) return { kind: "wait", recheckMs: 1000 };
  if (m.deleting) return { kind: "requestAbort", reason: DELETED_IN_TRANSFER, cause: "Deleted" };
  const perGiB = m.completionTimeoutPerGiB ?? limits.completionTimeoutPerGiB;
  const progressS = m.progressTimeoutSeconds ?? limits.progressTimeoutSeconds;
  const started = m.startedMs ?? nowMs;
  const total = completionTimeoutSeconds(m.memoryMiB ?? 1024, perGiB) * 1000;
  if (nowMs - started > total)
    return {
      kind: "requestAbort",
      reason: `no completion within ${total / 1000} s (completion timeout)`,
      cause: "Timeout",
    };
  const lastProgress = m.progressMs ?? started;
  if (nowMs - lastProgress > progressS * 1000)
    return { kind: "requestAbort", reason: `no progress for ${progressS} s (progress timeout)`, cause: "Timeout" };
  return { kind: "wait", recheckMs: 1000 };
}

/** A domain on its way to Running (or finishing another migration): a migration of it waits, it is not refused. */
const SETTLING: ReadonlySet<string> = new Set(["Pending", "Scheduling", "Starting", "Restoring", "Migrating"]);

/** What admission and target choice need of the XenDomain a migration moves. */
export interface MigratingDomain {
  host?: string;
  phase: DomainPhase;
  uuid?: string;
  memoryMiB?: number;
  /** As its agent reported (Migratable condition, status.migratable), and why not. */
  migratable: boolean;
  notMigratableWhy?: string;
  /** The domain's own migration settings (spec.migration). */
  bandwidthMiBps?: number;
  autoConverge?: boolean;
  /** What placement needs of it. */
  request: DomainRequest;
}

/** Everything a Pending or Scheduling migration is decided from, read once. */
export interface AdmissionFacts {
  migration: MigrationView;
  /** Its namespace and the name of the XenDomain it moves (spec.domain), as messages name them. */
  namespace: string;
  domainName: string;
  /** The migration's own bandwidth limit (spec.bandwidthMiBps). */
  bandwidthMiBps?: number;
  domain: MigratingDomain | undefined;
  /** Every migration as last written or seen: what the limits count. */
  all: MigrationView[];
  limits: MigrationLimits;
  /** XenMigrationPolicy/default's defaults, when it exists. */
  policy: { bandwidthMiBps?: number; autoConverge?: boolean };
  /** Target choice only (Scheduling): the hosts, and what is placed on each, the domain itself left out. */
  hosts: HostView[];
  placements: PlacementLookup;
}

export type AdmissionAction =
  | { kind: "setPhase"; phase: "Scheduling" | "PreparingTarget"; fields: Record<string, unknown> }
  | { kind: "fail"; reason: string }
  | { kind: "abort"; reason: string }
  | { kind: "requeue"; afterMs: number };

/**
 * The next step of a Pending migration (fail fast, wait for a settling domain or a free slot, or
 * stage it with the settings in force) or a Scheduling one (check the requested target, or let
 * placement choose among the hosts with inbound room; wait while hosts are only busy, fail when
 * none can take the domain).
 */
export function planAdmission(f: AdmissionFacts): AdmissionAction {
  const v = f.migration;
  const xd = f.domain;
  const name = f.domainName;
  const requeue = (afterMs: number): AdmissionAction => ({ kind: "requeue", afterMs });
  const fail = (reason: string): AdmissionAction => ({ kind: "fail", reason });
  // Deleted before it was sent: nothing moved, so it ends at once.
  if (v.deleting) return { kind: "abort", reason: DELETED_BEFORE_TRANSFER };
  if (v.phase === "Pending") {
    if (!xd) return fail(`XenDomain ${name} does not exist in ${f.namespace}`);
    if (!xd.host || SETTLING.has(xd.phase)) return requeue(1000);
    if (xd.phase !== "Running") return fail(`XenDomain ${name} is not running (phase ${xd.phase})`);
    if (!xd.migratable)
      return fail(`XenDomain ${name} cannot live-migrate: ${xd.notMigratableWhy ?? "not migratable"}`);
    if (!admit(f.all, f.limits).includes(v.key)) return requeue(2000);
    return {
      kind: "setPhase",
      phase: "Scheduling",
      fields: {
        sourceHost: xd.host,
        domainUUID: xd.uuid,
        memoryMiB: xd.memoryMiB,
        // The most specific limit wins: the migration's, the domain's, the policy's.
        bandwidthMiBps: f.bandwidthMiBps ?? xd.bandwidthMiBps ?? f.policy.bandwidthMiBps ?? 0,
        autoConverge: xd.autoConverge ?? f.policy.autoConverge ?? false,
      },
    };
  }
  // Moved on since it was queued: its next phase is the controller's other half.
  if (v.phase !== "Scheduling") return requeue(10);
  if (!xd?.host) return fail(`XenDomain ${name} went away`);
  const source = xd.host;
  const room = (host: string) => targetHasInboundRoom(f.all, host, f.limits, v.key);
  let target: string;
  if (v.requestedTarget) {
    const h = f.hosts.find((x) => x.name === v.requestedTarget);
    if (!h) return fail(`target host ${v.requestedTarget} does not exist`);
    if (h.name === source) return fail(`the domain already runs on ${source}`);
    const why = unfit(xd.request, h, f.placements.get(h.name) ?? []);
    if (why) return fail(`migration to ${h.name} refused: ${why}`);
    target = h.name;
  } else {
    const candidates = f.hosts.filter((h) => h.name !== source && room(h.name));
    const decision = place(xd.request, candidates, f.placements);
    if (!decision.host) {
      if (candidates.length < f.hosts.length - 1) return requeue(2000); // Some hosts are only busy: wait.
      return fail(`no host can take ${name}: ${"message" in decision ? decision.message : ""}`);
    }
    target = decision.host;
  }
  if (!room(target)) return requeue(2000);
  return { kind: "setPhase", phase: "PreparingTarget", fields: { targetHost: target } };
}
