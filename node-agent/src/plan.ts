// What the agent should do next for one domain, as a pure function of the
// XenDomain (spec and the status the agent wrote before) and what the
// hypervisor reports. No I/O here: the agent carries the action out, writes
// the new status, and asks again (level-triggered).
import type { DomainPhase, XenDomainSpec, XenDomainStatus } from "@kubexen/crds";
import { quantityMiB, XenDomainStatusSchema } from "@kubexen/crds";
import type { DomainInfo } from "@kubexen/hypervisor";
import { rfc3339 } from "@kubexen/sdk";

export type Action =
  | { kind: "none" }
  | { kind: "create"; paused: boolean }
  | { kind: "restore"; path: string; paused: boolean }
  | { kind: "shutdown"; graceMs: number }
  | { kind: "destroy"; reason: "crashed" | "deleting" | "stuck" }
  | { kind: "pause" }
  | { kind: "unpause" }
  | { kind: "save"; path: string }
  | { kind: "setMemory"; mib: number }
  | { kind: "setVcpus"; vcpus: number }
  | { kind: "wait"; untilMs: number };

export interface PlanInput {
  spec: XenDomainSpec;
  status: XenDomainStatus | undefined;
  /** The domain as the hypervisor reports it, if it exists here. */
  observed: DomainInfo | undefined;
  deleting: boolean;
  /** A migration of this domain involves this host: leave it to the migration. */
  migrating: boolean;
  nowMs: number;
  /** Where saved images go, per UUID: `<saveDir>/<uuid>.save`. */
  saveDir: string;
  backoff?: Backoff;
}

export interface Plan {
  action: Action;
  /** The phase to report now. */
  phase: DomainPhase;
  /** Status fields that change with this decision (restart bookkeeping). */
  statusPatch: Partial<XenDomainStatus>;
  reason: string;
  /**
   * Absent here and about to start it or to report its end: the cache may lag a handover to another
   * host (a migration's end can arrive before the binding's change), so the binding is read from the
   * API server first.
   */
  confirmBinding?: boolean;
  /** A long action (a graceful shutdown, a save): its phase is reported before it starts. */
  announce?: boolean;
}

export interface Backoff {
  baseMs: number;
  maxMs: number;
}

/** CrashLoopBackOff as kubelet does it: 10 s doubling to 5 min. */
export const DEFAULT_BACKOFF: Backoff = { baseMs: 10_000, maxMs: 300_000 };

export function restartBackoffMs(restarts: number, b: Backoff = DEFAULT_BACKOFF): number {
  return Math.min(b.maxMs, b.baseMs * 2 ** Math.max(0, restarts - 1));
}

/**
 * Where this agent saves a domain's image and restores it from. Always computed here, never read
 * from the API: anything that may write a domain's status could otherwise point `xl restore` at
 * any file of the host. The UUID must match the schema's pattern, so it cannot climb out of the
 * directory. `status.savedImage` only reports the path.
 */
export function savedImagePath(saveDir: string, uuid: string | undefined): string | undefined {
  if (!uuid || !XenDomainStatusSchema.shape.uuid.safeParse(uuid).success) return undefined;
  return `${saveDir}/${uuid}.save`;
}

/** A domain that is up in one of these hypervisor states (xl shows an idle guest as blocked). */
export const alive = (s: string | undefined) => s === "running" || s === "blocked" || s === "paused";

/** Whether the domain should exist and run here, given its strategy and history. */
export function wantsRunning(spec: XenDomainSpec, status: XenDomainStatus | undefined): boolean {
  // Being evicted: it stops here and starts on its next host.
  if (status?.eviction) return false;
  const phase = status?.phase;
  switch (spec.runStrategy) {
    case "Halted":
      return false;
    case "Always":
      return true;
    case "RerunOnFailure":
      return phase !== "Succeeded";
    case "Once":
    case "Manual":
      return status?.startTime === undefined || (phase !== "Succeeded" && phase !== "Failed" && phase !== "Stopped");
  }
}

export function plan(i: PlanInput): Plan {
  const p = decide(i);
  const kind = p.action.kind;
  if (!i.observed && (kind !== "none" || p.phase !== i.status?.phase)) p.confirmBinding = true;
  if (kind === "shutdown" || kind === "save") p.announce = true;
  return p;
}

function decide(i: PlanInput): Plan {
  const { spec, status, observed, nowMs } = i;
  const none = (phase: DomainPhase, reason: string, statusPatch: Partial<XenDomainStatus> = {}): Plan => ({
    action: { kind: "none" },
    phase,
    statusPatch,
    reason,
  });
  const savePath = savedImagePath(i.saveDir, status?.uuid);
  const badUuid = none("Failed", `status.uuid ${JSON.stringify(status?.uuid)} is not a UUID: no image path for it`);

  if (i.migrating) return none("Migrating", "a live migration of this domain is under way");

  if (i.deleting) {
    if (!observed) return none("Terminating", "stopped; waiting for the XenDomain to go");
    if (observed.state === "crashed" || observed.state === "paused" || observed.state === "shutdown")
      return {
        action: { kind: "destroy", reason: "deleting" },
        phase: "Terminating",
        statusPatch: {},
        reason: "deleting",
      };
    return {
      action: { kind: "shutdown", graceMs: spec.terminationGracePeriodSeconds * 1000 },
      phase: "Terminating",
      statusPatch: {},
      reason: "the XenDomain is being deleted",
    };
  }

  // The guest crashed: record it, clean up, restart after a backoff if the strategy says so.
  if (observed?.state === "crashed") {
    const restarts = (status?.restartCount ?? 0) + 1;
    const restart = spec.runStrategy === "Always" || spec.runStrategy === "RerunOnFailure";
    return {
      action: { kind: "destroy", reason: "crashed" },
      phase: restart ? "CrashLoopBackOff" : "Failed",
      statusPatch: restart
        ? {
            restartCount: restarts,
            nextRestartTime: new Date(nowMs + restartBackoffMs(restarts, i.backoff)).toISOString(),
          }
        : {},
      reason: "the guest crashed",
    };
  }

  const want = wantsRunning(spec, status);

  if (!observed) {
    // Gone without us stopping it, after it ran: the guest powered itself off.
    const ranBefore =
      alive(status?.state) && status?.phase !== "Stopping" && status?.phase !== "Saving" && !status?.eviction;
    if (ranBefore) {
      if (spec.runStrategy === "Always") {
        const restarts = (status?.restartCount ?? 0) + 1;
        return none("CrashLoopBackOff", "the guest shut itself down; Always restarts it", {
          restartCount: restarts,
          nextRestartTime: new Date(nowMs + restartBackoffMs(restarts, i.backoff)).toISOString(),
          state: "absent",
        });
      }
      const phase: DomainPhase = spec.runStrategy === "Manual" ? "Stopped" : "Succeeded";
      return none(phase, "the guest shut itself down", { state: "absent" });
    }
    if (!want) {
      const phase: DomainPhase = status?.phase === "Succeeded" || status?.phase === "Failed" ? status.phase : "Stopped";
      return none(phase, "not meant to run");
    }
    if (spec.powerState === "Saved") {
      return status?.savedImage
        ? none("Saved", "saved on the host")
        : none("Stopped", "powerState Saved but no image: start it to save it");
    }
    const next = status?.nextRestartTime ? Date.parse(status.nextRestartTime) : 0;
    if (next > nowMs)
      return {
        action: { kind: "wait", untilMs: next },
        phase: "CrashLoopBackOff",
        statusPatch: {},
        reason: "restart backoff",
      };
    const paused = spec.powerState === "Paused";
    if (status?.savedImage) {
      if (!savePath) return badUuid;
      return {
        action: { kind: "restore", path: savePath, paused },
        phase: "Restoring",
        statusPatch: {},
        reason: "restoring the saved image",
      };
    }
    return { action: { kind: "create", paused }, phase: "Starting", statusPatch: {}, reason: "starting" };
  }

  if (observed.migration) return none("Migrating", `xl reports the domain as --${observed.migration}`);

  if (!want) {
    return {
      action: { kind: "shutdown", graceMs: spec.terminationGracePeriodSeconds * 1000 },
      phase: "Stopping",
      statusPatch: {},
      reason: status?.eviction
        ? `evicted by ${status.eviction.by}: stopping to restart elsewhere`
        : `runStrategy ${spec.runStrategy}: stopping`,
    };
  }

  if (spec.powerState === "Saved") {
    if (!savePath) return badUuid;
    return { action: { kind: "save", path: savePath }, phase: "Saving", statusPatch: {}, reason: "powerState Saved" };
  }
  if (spec.powerState === "Paused" && observed.state !== "paused")
    return { action: { kind: "pause" }, phase: "Paused", statusPatch: {}, reason: "powerState Paused" };
  if (spec.powerState === "Running" && observed.state === "paused")
    return { action: { kind: "unpause" }, phase: "Running", statusPatch: {}, reason: "powerState Running" };

  const phase: DomainPhase = observed.state === "paused" ? "Paused" : "Running";
  const targetMiB = quantityMiB(spec.memory);
  const maxMiB = quantityMiB(spec.maxMemory ?? spec.memory);
  if (Math.abs(observed.memoryMiB - targetMiB) > 2 && targetMiB <= maxMiB) {
    return {
      action: { kind: "setMemory", mib: targetMiB },
      phase,
      statusPatch: {},
      reason: `balloon to ${targetMiB} MiB`,
    };
  }
  const maxV = spec.maxVcpus ?? spec.vcpus;
  if (observed.vcpus !== spec.vcpus && spec.vcpus <= maxV) {
    return {
      action: { kind: "setVcpus", vcpus: spec.vcpus },
      phase,
      statusPatch: {},
      reason: `${spec.vcpus} vCPUs online`,
    };
  }
  return none(phase, "as desired");
}

/** Hypervisor failures a retry cannot fix until the spec or the host changes. */
const STALLING: ReadonlySet<string> = new Set([
  "InvalidConfig",
  "MissingFile",
  "Unsupported",
  "AlreadyExists",
  "InsufficientMemory",
  "NotMigratable",
]);

/** Whether a hypervisor failure (its code) stalls the domain rather than being retried. */
export const stalls = (code: string) => STALLING.has(code);

/** When to look again at a stalled domain: memory may free up on the host, anything else waits for a spec change. */
export const stalledRecheckMs = (reason: string | undefined): number | undefined =>
  reason === "InsufficientMemory" ? 30_000 : undefined;

/**
 * Whether to leave the domain alone without deciding: Stalled for the spec it has now and not
 * running here (a spec this host cannot run waits for a change, or for memory to free up).
 */
export function stalledHold(
  status: XenDomainStatus | undefined,
  generation: number | undefined,
  observed: DomainInfo | undefined,
): { recheckMs?: number } | undefined {
  const stalled = status?.conditions?.find((c) => c.type === "Stalled" && c.status === "True");
  if (!stalled || status?.observedGeneration !== generation || observed) return undefined;
  return { recheckMs: stalledRecheckMs(stalled.reason) };
}

export interface Settled {
  phase: DomainPhase;
  statusPatch: Partial<XenDomainStatus>;
  /** Ready once at rest (or started as asked: one status write for a start, not two), else Reconciling. */
  mode: "Ready" | "Reconciling";
  event?: { type: "Normal" | "Warning"; reason: string; action: string; message: string };
}

export interface SettleInput {
  /** The domain as the hypervisor reports it after the action. */
  after: DomainInfo | undefined;
  deleting: boolean;
  /** Restarts before this one (status.restartCount). */
  restartCount: number;
  host: string;
  nowMs: number;
}

/** The verb an action's events carry. */
export function actionVerb(a: Action): string {
  return a.kind === "create" ? "Start" : a.kind.charAt(0).toUpperCase() + a.kind.slice(1);
}

/** What to report once a plan's action succeeded: the phase it led to, the status it changed, the event. */
export function settle(p: Plan, i: SettleInput): Settled {
  const a = p.action;
  let statusPatch: Partial<XenDomainStatus> = { ...p.statusPatch };
  let phase = p.phase;
  let event: Settled["event"];
  if (a.kind === "create" || a.kind === "restore") {
    const startTime = rfc3339(new Date(i.nowMs));
    statusPatch = { ...statusPatch, startTime, nextRestartTime: undefined };
    if (a.kind === "restore") statusPatch.savedImage = undefined;
    phase = i.after?.state === "paused" ? "Paused" : "Running";
    if (i.restartCount > 0) statusPatch.lastRestartTime = startTime;
    event = {
      type: "Normal",
      reason: a.kind === "create" ? "Started" : "Restored",
      action: actionVerb(a),
      message: `domid ${i.after?.domid} on ${i.host}`,
    };
  } else if (a.kind === "save") {
    statusPatch = { ...statusPatch, savedImage: a.path };
    phase = "Saved";
    event = { type: "Normal", reason: "Saved", action: "Save", message: `saved to ${a.path} on ${i.host}` };
  } else if (a.kind === "shutdown") {
    phase = i.deleting ? "Terminating" : "Stopped";
    event = { type: "Normal", reason: "Stopped", action: "Shutdown", message: `stopped on ${i.host}` };
  } else if (a.kind === "destroy" && a.reason === "crashed") {
    event = {
      type: "Warning",
      reason: "Crashed",
      action: "Restart",
      message: `the guest crashed on ${i.host}; restart #${statusPatch.restartCount ?? "-"}${statusPatch.nextRestartTime ? ` at ${statusPatch.nextRestartTime}` : " not planned"}`,
    };
  } else if (a.kind === "pause" || a.kind === "unpause") {
    phase = a.kind === "pause" ? "Paused" : "Running";
  }
  const settled = a.kind === "none" || a.kind === "wait";
  const started = (a.kind === "create" || a.kind === "restore") && alive(i.after?.state);
  return { phase, statusPatch, mode: settled || started ? "Ready" : "Reconciling", ...(event ? { event } : {}) };
}

/**
 * When to look at the domain again once its status is written: at the end of a backoff, right
 * away after an action (to see where it led), else at the resync (or the CPU report, while it runs).
 */
export function nextLookMs(
  a: Action,
  after: DomainInfo | undefined,
  nowMs: number,
  o: { resyncMs: number; cpuReportIntervalMs?: number },
): number {
  if (a.kind === "wait") return Math.max(100, a.untilMs - nowMs);
  if (a.kind !== "none") return 10;
  return after ? Math.min(o.resyncMs, o.cpuReportIntervalMs ?? o.resyncMs) : o.resyncMs;
}
