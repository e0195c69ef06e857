// The scheduler's decisions, pure: where an unbound domain goes (or what it is
// told when nothing fits, and whether that is news worth an event), the status
// a binding writes, and the bookkeeping of bindings written but not seen yet
// (kube-scheduler's assume). The controller (scheduler.ts) reads the caches
// once, calls these, and writes.
import { stableMac, type XenDomainSpec } from "@kubexen/crds";
import { type Condition, setCondition } from "@kubexen/sdk";
import {
  assume,
  type DomainRequest,
  type HostView,
  type OvercommitPolicy,
  type PlacedDomain,
  type PlacementLookup,
  type Placements,
  place,
} from "./placement.ts";

/** An unschedulable domain is looked at again after this long even if nothing it depends on changed. */
export const UNSCHEDULABLE_RETRY_MS = 60_000;

export interface ScheduleFacts {
  request: DomainRequest;
  hosts: HostView[];
  /** Bound domains per host, those assumed bound included. */
  placements: PlacementLookup;
  policy: OvercommitPolicy;
  /** The domain's current conditions and generation (the Scheduled condition is the scheduler's). */
  conditions: readonly Condition[];
  generation?: number;
  /** The message it was last told when found unschedulable, if it was. */
  lastMessage?: string;
}

export type ScheduleDecision =
  | { kind: "bind"; host: string }
  | {
      kind: "unschedulable";
      message: string;
      /** The status to apply: phase, the counted reasons, Scheduled=False. */
      status: { phase: "Unschedulable"; unschedulableReasons: Record<string, number>; conditions: Condition[] };
      /** A FailedScheduling event only when the message changed: retries do not flood events. */
      recordEvent: boolean;
      requeueAfterMs: number;
    };

/** Where an unbound domain goes, or why it cannot go anywhere. */
export function decideSchedule(f: ScheduleFacts, now?: Date): ScheduleDecision {
  const decision = place(f.request, f.hosts, f.placements, f.policy);
  if (!("message" in decision)) return { kind: "bind", host: decision.host };
  const conditions = setCondition(
    f.conditions.filter((c) => c.type === "Scheduled"),
    {
      type: "Scheduled",
      status: "False",
      reason: "Unschedulable",
      message: decision.message,
      observedGeneration: f.generation,
    },
    now,
  );
  return {
    kind: "unschedulable",
    message: decision.message,
    status: { phase: "Unschedulable", unschedulableReasons: decision.reasons, conditions },
    recordEvent: f.lastMessage !== decision.message,
    requeueAfterMs: UNSCHEDULABLE_RETRY_MS,
  };
}

/**
 * The status a binding applies: the host, the identity (the UUID it already has, or the new one),
 * a MAC per network interface (the spec's, or a stable one from the UUID), Scheduled=True.
 * Phase and unschedulableReasons are left out, which releases them: the agent reports from here on.
 */
export function bindingStatus(
  f: {
    host: string;
    uuid: string;
    networks: XenDomainSpec["networks"];
    conditions: readonly Condition[];
    generation?: number;
  },
  now?: Date,
) {
  const interfaces = (f.networks ?? []).map((n, index) => ({
    index,
    mac: n.mac ?? stableMac(f.uuid, index),
    bridge: n.bridge,
  }));
  const conditions = setCondition(
    f.conditions.filter((c) => c.type === "Scheduled"),
    {
      type: "Scheduled",
      status: "True",
      reason: "Bound",
      message: `bound to ${f.host}`,
      observedGeneration: f.generation,
    },
    now,
  );
  return { host: f.host, uuid: f.uuid, interfaces, conditions };
}

/** A binding written and assumed, with what the cache shows of its domain now. */
export interface AssumedBinding {
  key: string;
  host: string;
  /** The domain as cached: undefined once it is gone. */
  domain?: { bound: boolean; placed: PlacedDomain };
}

/**
 * The assumed bindings still to count (their domain exists and the cache does not show it bound
 * yet), as placements; and those to forget (seen bound, or gone).
 */
export function assumedPlacements(assumed: readonly AssumedBinding[]): { placements: Placements; forget: string[] } {
  const placements: Placements = new Map();
  const forget: string[] = [];
  for (const a of assumed) {
    if (!a.domain || a.domain.bound) forget.push(a.key);
    else assume(placements, a.host, a.domain.placed);
  }
  return { placements, forget };
}

/** What is placed on each host: the cache's bound domains plus the assumed ones. */
export function withAssumed(base: PlacementLookup, assumed: Placements): PlacementLookup {
  return {
    get: (host: string) => {
      const extra = assumed.get(host);
      const known = base.get(host);
      return extra ? [...(known ?? []), ...extra] : known;
    },
  };
}
