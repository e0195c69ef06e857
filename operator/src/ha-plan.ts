// HA decisions, pure: what happens to each domain bound to a fenced host (its
// guests are certainly not running), and when to look at the host again. The
// controller (ha.ts) reads the host, its domains and the migrations under way
// once, and carries the steps out.
import type { DomainPhase, RunStrategy } from "@kubexen/crds";

/** What HA needs of a XenDomain. */
export interface HaDomain {
  key: string;
  deleting: boolean;
  host?: string;
  uuid?: string;
  runStrategy: RunStrategy;
  phase?: DomainPhase;
  state?: string;
}

export type HaAction = { kind: "none" } | { kind: "restart" } | { kind: "markFailed"; why: string };

/** What HA does with one domain bound to a fenced host, by its runStrategy. */
export function haAction(d: HaDomain, migrating: boolean): HaAction {
  if (d.deleting || migrating) return { kind: "none" };
  if (!d.host) return { kind: "none" };
  switch (d.runStrategy) {
    case "Always":
      return { kind: "restart" };
    case "RerunOnFailure":
      return d.phase === "Succeeded" ? { kind: "none" } : { kind: "restart" };
    case "Halted":
      return { kind: "none" };
    case "Once":
    case "Manual":
      return { kind: "markFailed", why: `runStrategy ${d.runStrategy} does not restart it elsewhere` };
  }
}

/** One host's state as HA sees it. */
export interface HaFacts {
  host: string;
  fenced: boolean;
  /** The domains bound to the host. */
  domains: HaDomain[];
  /** UUIDs of domains with an unfinished migration: the migration settles them first. */
  migrating: ReadonlySet<string>;
}

export type HaStep = { kind: "restart"; key: string } | { kind: "markFailed"; key: string; why: string };

export interface HaPlan {
  steps: HaStep[];
  /** Set while migrations of its domains are under way: look again after them. */
  requeueAfterMs?: number;
}

/**
 * Which domains of a fenced host are released to restart elsewhere (the scheduler chooses where)
 * and which are marked Failed where they were; nothing while the host is not fenced.
 */
export function planFencedHost(f: HaFacts): HaPlan {
  if (!f.fenced) return { steps: [] };
  const steps: HaStep[] = [];
  let waiting = false;
  for (const d of f.domains) {
    if (d.host !== f.host) continue;
    const busy = !!d.uuid && f.migrating.has(d.uuid);
    waiting ||= busy;
    const a = haAction(d, busy);
    if (a.kind === "restart") steps.push({ kind: "restart", key: d.key });
    // Already recorded as failed and gone: nothing to write again.
    else if (a.kind === "markFailed" && !(d.phase === "Failed" && d.state === "absent"))
      steps.push({ kind: "markFailed", key: d.key, why: a.why });
  }
  return waiting ? { steps, requeueAfterMs: 2000 } : { steps };
}
