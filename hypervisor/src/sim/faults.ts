// Failure injection for the sim driver: slow and hanging calls, a migration
// failing at a chosen phase on a chosen side, guests that ignore a clean
// shutdown. Tests set these on `SimHypervisor.faults`; the host's own
// failures (crash, watchdog reset) are the driver's.

/** `handover`: the link breaks before the go reaches the target; `confirm`: after it, before the target confirms. */
export type MigrationFaultPhase = "prepare" | "precopy" | "stopcopy" | "handover" | "confirm" | "resume";

export interface SimFaults {
  /** Delay every call by this many ms. */
  delayMs?: number;
  /** Calls by these method names never return (until cleared). */
  hang?: string[];
  /** Fail the next migration (sent or received here) at this phase. */
  migration?: { phase: MigrationFaultPhase; side: "send" | "receive" };
  /** Domains (by UUID) that ignore a clean shutdown request. */
  ignoreShutdown?: string[];
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What every call goes through: it hangs for good if its method is listed, else waits the delay. */
export async function callFaults(f: SimFaults, method: string): Promise<void> {
  if (f.hang?.includes(method)) await new Promise(() => {});
  if (f.delayMs) await sleep(f.delayMs);
}

/** Whether the migration fails here, now; the fault is used up when it fires (it fails one migration). */
export function takeMigrationFault(f: SimFaults, side: "send" | "receive", phase: MigrationFaultPhase): boolean {
  const m = f.migration;
  if (m && m.side === side && m.phase === phase) {
    f.migration = undefined;
    return true;
  }
  return false;
}

export function ignoresShutdown(f: SimFaults, uuid: string): boolean {
  return !!f.ignoreShutdown?.includes(uuid);
}
