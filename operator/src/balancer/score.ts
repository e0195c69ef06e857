// Scoring for the balancer, pure. A host's load is the weighted sum of its
// normalised CPU load (measured CPU time of its domains over its CPUs) and
// memory load (memory of its domains over its allocatable memory). Imbalance
// is the population standard deviation of the counted hosts' loads (as VMware
// DRS measures it), kept as running sums so that one move updates it in O(1).
// A plan's objective is its imbalance plus its migration cost: minGain per
// GiB moved, at cluster scale.
import type { BalanceDomain, BalanceHost } from "./types.ts";

export type Weights = { cpu: number; memory: number };

export function hostLoads(hosts: BalanceHost[], domains: BalanceDomain[], weights: Weights): Map<string, number> {
  const wsum = weights.cpu + weights.memory || 1;
  const acc = new Map(hosts.map((h) => [h.name, { cpu: 0, mem: 0 }]));
  for (const d of domains) {
    const a = acc.get(d.host);
    if (!a) continue;
    a.cpu += d.cpuCores;
    a.mem += d.memoryMiB;
  }
  const out = new Map<string, number>();
  for (const h of hosts) {
    const a = acc.get(h.name) ?? { cpu: 0, mem: 0 };
    const cpu = h.cpus > 0 ? a.cpu / h.cpus : 0;
    const mem = h.memoryMiB > 0 ? a.mem / h.memoryMiB : 0;
    out.set(h.name, (weights.cpu * cpu + weights.memory * mem) / wsum);
  }
  return out;
}

/** Population standard deviation of the counted hosts' loads. */
export function imbalance(hosts: BalanceHost[], loads: Map<string, number>): number {
  const xs = hosts.filter((h) => h.counted).map((h) => loads.get(h.name) ?? 0);
  if (xs.length === 0) return 0;
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  return Math.sqrt(Math.max(0, xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length));
}

/** Sum and sum of squares of the counted hosts' loads. */
export interface Sums {
  sum: number;
  sumSq: number;
}

/** Memory a domain's migration transfers, in GiB (the unit of the migration cost). */
export const gibOf = (d: BalanceDomain): number => d.memoryMiB / 1024;

/** Scores of one cluster: its hosts' starting loads and the arithmetic of moving domains between them. */
export class Scorer {
  /** Whether each host (by index) counts in the imbalance. */
  readonly counted: boolean[];
  /** Loads per host index before any move. */
  readonly load0: Float64Array;
  readonly sums0: Sums;
  /** Gains are compared at cluster scale (times sqrt(n)): one move shifts a std of n hosts by ~1/sqrt(n). */
  readonly scale: number;
  private readonly hosts: BalanceHost[];
  private readonly weights: Weights;
  private readonly minGain: number;
  private readonly n: number;
  private readonly wsum: number;

  constructor(hosts: BalanceHost[], domains: BalanceDomain[], weights: Weights, minGain: number) {
    this.hosts = hosts;
    this.weights = weights;
    this.minGain = minGain;
    this.wsum = weights.cpu + weights.memory || 1;
    this.counted = hosts.map((h) => h.counted);
    this.n = this.counted.filter(Boolean).length;
    this.scale = Math.sqrt(Math.max(1, this.n));
    const loads = hostLoads(hosts, domains, weights);
    this.load0 = Float64Array.from(hosts.map((h) => loads.get(h.name) ?? 0));
    let sum = 0;
    let sumSq = 0;
    for (let i = 0; i < hosts.length; i++)
      if (this.counted[i]) {
        sum += this.load0[i] ?? 0;
        sumSq += (this.load0[i] ?? 0) ** 2;
      }
    this.sums0 = { sum, sumSq };
  }

  /** The imbalance (standard deviation) from the running sums. */
  std(sum: number, sumSq: number): number {
    const n = this.n;
    return n ? Math.sqrt(Math.max(0, sumSq / n - (sum / n) ** 2)) : 0;
  }

  /** The load domain `d` puts on the host at index `i`. */
  contribution(d: BalanceDomain, i: number): number {
    const h = this.hosts[i] as BalanceHost;
    const w = this.weights;
    return (
      (w.cpu * (h.cpus > 0 ? d.cpuCores / h.cpus : 0) + w.memory * (h.memoryMiB > 0 ? d.memoryMiB / h.memoryMiB : 0)) /
      this.wsum
    );
  }

  /**
   * The running sums after `out` leaves host si (now at ls) and `inc` arrives at ti (now at lt).
   * Negative amounts undo a move.
   */
  afterMove(
    sum: number,
    sumSq: number,
    si: number,
    ls: number,
    out: number,
    ti: number,
    lt: number,
    inc: number,
  ): Sums {
    if (this.counted[si]) {
      sum -= out;
      sumSq += (ls - out) ** 2 - ls ** 2;
    }
    if (this.counted[ti]) {
      sum += inc;
      sumSq += (lt + inc) ** 2 - lt ** 2;
    }
    return { sum, sumSq };
  }

  /** What moving `gib` GiB costs, in imbalance. */
  cost(gib: number): number {
    return (this.minGain * gib) / this.scale;
  }

  /** Whether removing `gain` of imbalance is worth moving `gib` GiB. */
  pays(gain: number, gib: number): boolean {
    return !(gain <= 0 || gain * this.scale < this.minGain * gib);
  }
}
