// What an agent does about a migration's domain when no stream of its own
// process carries it: after the agent restarted mid-migration, or after a
// report the API server did not take. The hypervisor's state is the fact;
// the agent reports it, and never undoes what it cannot see the end of.
// Pure: the agent reads the domain and the migration, then carries it out.

/** The domain as the hypervisor shows it on this host, if at all. */
export interface LocalCopy {
  state: string;
  migration?: "incoming" | "migratedaway";
}

export type SourceStart =
  /** The domain is here and runs: send it. */
  | { kind: "send" }
  /** The domain left, or waits paused after a handover, before this process: only the target can say where it runs. */
  | { kind: "ambiguous"; why: string };

/** Whether the source sends a Transferring migration it has not reported on (its stream, if any, died with a restart). */
export function sourceStart(dom: LocalCopy | undefined, host: string): SourceStart {
  if (!dom)
    return {
      kind: "ambiguous",
      why: `the domain is no longer on ${host}: it left before the agent restarted, and only the target's report says where it runs`,
    };
  if (dom.migration === "migratedaway")
    return {
      kind: "ambiguous",
      why: `${host} keeps a paused --migratedaway copy from a handover the agent did not see the end of; the target's report settles it`,
    };
  return { kind: "send" };
}

export type TargetSettle =
  | { kind: "none" }
  /** The domain runs here (received before a restart, or its report was lost): say so. */
  | { kind: "reportRunning" }
  /** A paused --incoming copy that no stream of this process fills: remove it; report if the migration waits on us. */
  | { kind: "discardIncoming"; report: boolean }
  /** The source has reported and nothing of the domain is here: it does not run here. */
  | { kind: "reportAbsent" };

export interface TargetFacts {
  /** The migration's phase. */
  phase?: string;
  /** Whether this host already set TargetRunning, and the source SourceDone. */
  targetReported: boolean;
  sourceReported: boolean;
  /** A stream of this process is receiving this migration now. */
  receiving: boolean;
  dom: LocalCopy | undefined;
}

/** What the target does about its copy outside a live stream. */
export function targetSettle(f: TargetFacts): TargetSettle {
  if (f.receiving) return { kind: "none" };
  const waitsOnUs = f.phase === "Transferring" && !f.targetReported;
  if (f.dom?.migration === "incoming") return { kind: "discardIncoming", report: waitsOnUs };
  if (!waitsOnUs) return { kind: "none" };
  // A migration reaches Transferring only when the domain was not here before (TargetReady).
  if (f.dom) return { kind: "reportRunning" };
  // Before the source's report a stream may still come; after it, none will.
  return f.sourceReported ? { kind: "reportAbsent" } : { kind: "none" };
}
