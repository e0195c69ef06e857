// When a host whose agent went silent has certainly stopped running guests,
// pure. Its domains may start elsewhere only then: after the Lease expired
// and the agent's own fence window (self-fence timeout plus watchdog) has
// passed since the last renewal, plus a margin for clock skew; or at once when
// the administrator declares the host out of service.
import type { XenHost } from "@kubexen/crds";
import { getCondition } from "@kubexen/sdk";

/** Whether host health has declared the host fenced (the Fenced condition fenceVerdict decides). */
export const isFenced = (h: XenHost | undefined) => getCondition(h?.status?.conditions, "Fenced")?.status === "True";

export interface LeaseView {
  renewTime?: string;
  leaseDurationSeconds?: number;
}

export interface FenceInput {
  lease: LeaseView | undefined;
  fencing: { enabled: boolean; windowSeconds: number } | undefined;
  outOfService: boolean;
  nowMs: number;
  marginMs: number;
}

export interface FenceVerdict {
  fenced: boolean;
  reason: "OutOfService" | "FenceWindowPassed" | "HeartbeatOK" | "AwaitingFence" | "FencingDisabled" | "NoLease";
  message: string;
  /** When the verdict can next change without any other input. */
  recheckMs?: number;
}

/** Default margin on top of the agent's window: generous against clock skew between hosts. */
export const FENCE_MARGIN_MS = 15_000;

/** Milliseconds since the lease expired (negative while it is valid); undefined without a lease. */
export function leaseExpiredForMs(lease: LeaseView | undefined, nowMs: number): number | undefined {
  if (!lease?.renewTime) return undefined;
  const renew = Date.parse(lease.renewTime);
  return nowMs - (renew + (lease.leaseDurationSeconds ?? 40) * 1000);
}

export function fenceVerdict(i: FenceInput): FenceVerdict {
  if (i.outOfService)
    return { fenced: true, reason: "OutOfService", message: "the administrator declared the host out of service" };
  const expiredFor = leaseExpiredForMs(i.lease, i.nowMs);
  if (expiredFor !== undefined && expiredFor <= 0)
    return { fenced: false, reason: "HeartbeatOK", message: "the node agent renews its Lease", recheckMs: -expiredFor };
  if (!i.lease?.renewTime) return { fenced: false, reason: "NoLease", message: "the node agent never took its Lease" };
  if (!i.fencing?.enabled)
    return {
      fenced: false,
      reason: "FencingDisabled",
      message:
        "the heartbeat is lost and the agent runs without fencing: its domains stay bound until spec.outOfService is set (only once the host is off)",
    };
  const deadline = Date.parse(i.lease.renewTime) + i.fencing.windowSeconds * 1000 + i.marginMs;
  if (i.nowMs >= deadline)
    return {
      fenced: true,
      reason: "FenceWindowPassed",
      message: `no renewal since ${i.lease.renewTime}; the host reset itself within its ${i.fencing.windowSeconds} s fence window`,
    };
  return {
    fenced: false,
    reason: "AwaitingFence",
    message: `the heartbeat is lost; domains may restart elsewhere from ${new Date(deadline).toISOString()} (fence window ${i.fencing.windowSeconds} s + ${i.marginMs / 1000} s margin)`,
    recheckMs: deadline - i.nowMs,
  };
}
