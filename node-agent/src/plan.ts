// What the agent should do next for one domain, as a pure function of the
// XenDomain (spec and the status the agent wrote before) and what the
// hypervisor reports. No I/O here: the agent carries the action out, writes
// the new status, and asks again (level-triggered).
import type { DomainPhase, XenDomainSpec, XenDomainStatus } from "@kubexen/crds";
import { quantityMiB, XenDomainStatusSchema } from "@kubexen/crds";
import type { DomainInfo } from "@kubexen/hypervisor";

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
