// Benchmark 5: live migration on the sim's pre-copy model. Downtime and total
// time against the physical bound (memory / bandwidth) for 1 to 16 GiB and
// dirty rates up to half the bandwidth, with and without auto-converge (a
// credit2 cap throttling a guest that does not converge).
import { PAGE_BYTES, planPrecopy } from "@kubexen/hypervisor";

export interface PrecopyRow {
  memoryGiB: number;
  dirtyFraction: number;
  autoConverge: boolean;
  boundS: number;
  totalS: number;
  downtimeMs: number;
  rounds: number;
  converged: boolean;
  overBound: number;
}

export function runPrecopy(size: "small" | "full"): { bandwidthMiBps: number; rows: PrecopyRow[] } {
  const bandwidthMiBps = 1250; // 10 GbE
  const bw = bandwidthMiBps * 2 ** 20;
  const mems = size === "full" ? [1, 2, 4, 8, 16] : [1, 4];
  // Up to half the bandwidth, and beyond, where only auto-converge brings the downtime down.
  const fractions = size === "full" ? [0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1] : [0, 0.25, 0.5, 1];
  const rows: PrecopyRow[] = [];
  for (const memoryGiB of mems)
    for (const dirtyFraction of fractions)
      for (const autoConverge of [false, true]) {
        const p = planPrecopy({
          memoryBytes: memoryGiB * 2 ** 30,
          bandwidthBps: bw,
          dirtyPagesPerSec: (dirtyFraction * bw) / PAGE_BYTES,
          // A guest rewrites at most a quarter of its memory over and over.
          workingSetPages: (memoryGiB * 2 ** 30) / PAGE_BYTES / 4,
          autoConverge,
        });
        const boundS = (memoryGiB * 2 ** 30) / bw;
        rows.push({
          memoryGiB,
          dirtyFraction,
          autoConverge,
          boundS,
          totalS: p.totalMs / 1000,
          downtimeMs: p.downtimeMs,
          rounds: p.rounds.length + 1,
          converged: p.converged,
          overBound: p.totalMs / 1000 / boundS,
        });
      }
  return { bandwidthMiBps, rows };
}
