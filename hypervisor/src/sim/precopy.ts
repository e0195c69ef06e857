// Live migration as libxc's pre-copy does it, in numbers:
//   round 0 sends every page; each later round sends the pages dirtied while
//   the previous round was on the wire; after `maxRounds` rounds, or once fewer
//   than `stopThresholdPages` are dirty, the guest is paused and the rest is
//   sent (stop-and-copy): that last round plus a fixed resume cost is the
//   downtime.
// With autoConverge, the throttle the drivers apply (autoconverge.ts, from
// the memory sent again) slows dirtying proportionally, as a credit2 cap does.
import { autoConvergeThrottle } from "../autoconverge.ts";

export const PAGE_BYTES = 4096;

export interface PrecopyInput {
  memoryBytes: number;
  /** Link bandwidth in bytes per second. */
  bandwidthBps: number;
  /** Pages the guest dirties per second (its writable working set churn). */
  dirtyPagesPerSec: number;
  /** Pages the guest keeps re-dirtying at most (working set); default: all memory. */
  workingSetPages?: number;
  maxRounds?: number;
  stopThresholdPages?: number;
  /** Fixed cost of pausing, device state and resume on the target, in ms. */
  resumeOverheadMs?: number;
  autoConverge?: boolean;
}

export interface PrecopyRound {
  pages: number;
  seconds: number;
  throttle: number;
}

export interface PrecopyPlan {
  rounds: PrecopyRound[];
  /** The stop-and-copy round (guest paused). */
  final: PrecopyRound;
  bytes: number;
  downtimeMs: number;
  totalMs: number;
  converged: boolean;
}

export function planPrecopy(i: PrecopyInput): PrecopyPlan {
  if (!(i.memoryBytes > 0)) throw new Error(`planPrecopy: memoryBytes must be positive, got ${i.memoryBytes}`);
  if (!(i.bandwidthBps > 0)) throw new Error(`planPrecopy: bandwidthBps must be positive, got ${i.bandwidthBps}`);
  if (!(i.dirtyPagesPerSec >= 0))
    throw new Error(`planPrecopy: dirtyPagesPerSec must be >= 0, got ${i.dirtyPagesPerSec}`);
  const maxRounds = i.maxRounds ?? 5;
  const threshold = i.stopThresholdPages ?? 50;
  const overheadMs = i.resumeOverheadMs ?? 30;
  const totalPages = Math.ceil(i.memoryBytes / PAGE_BYTES);
  const wss = Math.min(totalPages, i.workingSetPages ?? totalPages);
  const pageSec = PAGE_BYTES / i.bandwidthBps;

  const rounds: PrecopyRound[] = [];
  let throttle = 0;
  let toSend = totalPages;
  let converged = false;
  let sentPages = 0;
  for (let r = 0; r < maxRounds; r++) {
    const seconds = toSend * pageSec;
    rounds.push({ pages: toSend, seconds, throttle });
    const dirtied = Math.min(wss, Math.round(i.dirtyPagesPerSec * (1 - throttle) * seconds));
    if (dirtied < threshold) {
      toSend = dirtied;
      converged = true;
      break;
    }
    sentPages += toSend;
    if (i.autoConverge) throttle = autoConvergeThrottle(totalPages * PAGE_BYTES, sentPages * PAGE_BYTES);
    toSend = dirtied;
  }
  const finalSeconds = toSend * pageSec;
  const final = { pages: toSend, seconds: finalSeconds, throttle };
  sentPages = rounds.reduce((s, r) => s + r.pages, 0) + toSend;
  const downtimeMs = finalSeconds * 1000 + overheadMs;
  const totalMs = rounds.reduce((s, r) => s + r.seconds, 0) * 1000 + downtimeMs;
  return { rounds, final, bytes: sentPages * PAGE_BYTES, downtimeMs, totalMs, converged };
}

/** What a migration's pre-copy runs on: the domain's memory and workload, the link and its limit. */
export interface MigrationModel {
  memoryMiB: number;
  /** The domain's page-dirtying rate at full load. */
  dirtyPagesPerSec: number;
  /** Its load per vCPU, 0..1. */
  load: number;
  /** The host's link, MiB/s. */
  linkMiBps: number;
  /** The migration's bandwidth limit, MiB/s (0 or absent: none). */
  bandwidthMiBps?: number;
  autoConverge?: boolean;
}

/**
 * The pre-copy input of a sim migration: the link's bandwidth or the migration's limit if lower,
 * and dirtying scaled by the load (an idle guest still dirties a twentieth: timers, page cache).
 */
export function precopyInput(m: MigrationModel): PrecopyInput {
  return {
    memoryBytes: m.memoryMiB * 2 ** 20,
    bandwidthBps: Math.min(m.linkMiBps, m.bandwidthMiBps || Number.POSITIVE_INFINITY) * 2 ** 20,
    dirtyPagesPerSec: m.dirtyPagesPerSec * Math.max(0.05, m.load),
    autoConverge: m.autoConverge,
  };
}
