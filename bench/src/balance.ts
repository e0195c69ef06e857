// Benchmark 4: balancer quality and speed. Generated clusters (skewed, hot
// spot, a host freshly emptied by maintenance) with heterogeneous hosts and
// domains; our planner against a DRS-style greedy baseline (the single best
// move by drop in standard deviation, repeated, at most 8 moves per host) and
// against the exact optimum on small instances, for every move budget k;
// decision time at full size; and a 24-hour drifting-load trace.
import { type BalanceDomain, type BalanceHost, hostLoads, imbalance, planBalance, unfit } from "@kubexen/operator";

export type Shape = "skewed" | "hotspot" | "fresh-empty";

/** A small deterministic generator (mulberry32), so every run sees the same clusters. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;

export function generate(shape: Shape, nHosts: number, nDomains: number, seed: number) {
  const r = rng(seed);
  const hosts: BalanceHost[] = Array.from({ length: nHosts }, (_, i) => ({
    name: `h${i}`,
    ready: true,
    counted: true,
    unschedulable: false,
    inMaintenance: false,
    labels: {},
    cpus: pick(r, [16, 32, 64]),
    memoryMiB: pick(r, [64, 128, 256]) * 1024,
    guestTypes: ["pv", "pvh", "hvm"],
    pciAssignable: [],
  }));
  const domains: BalanceDomain[] = [];
  const used = new Map<string, BalanceDomain[]>();
  for (let i = 0; i < nDomains; i++) {
    const vcpus = pick(r, [1, 2, 4, 8]);
    const d: BalanceDomain = {
      key: `ns/d${i}`,
      namespace: "ns",
      name: `d${i}`,
      host: "",
      labels: {},
      memoryMiB: pick(r, [1, 2, 4, 8, 16]) * 1024,
      vcpus,
      pciDevices: [],
      type: "pvh",
      hostSelector: {},
      antiAffinity: [],
      cpuCores: r() * vcpus * 0.6,
      movable: true,
    };
    // Preferred host by shape; the first that fits takes it.
    let start: number;
    if (shape === "skewed") start = Math.floor(r() ** 3 * nHosts);
    else if (shape === "fresh-empty") start = 1 + Math.floor(r() * (nHosts - 1));
    else start = Math.floor(r() * nHosts);
    for (let k = 0; k < nHosts; k++) {
      const idx = shape === "fresh-empty" ? 1 + ((start - 1 + k) % (nHosts - 1)) : (start + k) % nHosts;
      const h = hosts[idx] as BalanceHost;
      const list = used.get(h.name) ?? [];
      if (unfit(d, h, list) === undefined) {
        d.host = h.name;
        list.push(d);
        used.set(h.name, list);
        break;
      }
    }
    if (d.host) domains.push(d);
  }
  if (shape === "hotspot") {
    // Every domain on the first host burns nearly all its vCPUs.
    for (const d of domains) if (d.host === "h0") d.cpuCores = d.vcpus * 0.95;
  }
  return { hosts, domains };
}

const W = { cpu: 0.5, memory: 0.5 };

export function ours(hosts: BalanceHost[], domains: BalanceDomain[], k: number, perHost = k) {
  return planBalance(hosts, domains, {
    weights: W,
    threshold: 0,
    maxMoves: k,
    maxMovesPerHost: perHost,
    minGain: 0,
    fanout: Math.min(hosts.length, 12),
  });
}

/** DRS-style greedy: the single best move, repeated; at most 8 moves per host. */
export function greedy(hosts: BalanceHost[], domains: BalanceDomain[], k: number) {
  return planBalance(hosts, domains, {
    weights: W,
    threshold: 0,
    maxMoves: k,
    maxMovesPerHost: 8,
    minGain: 0,
    beam: 1,
    refine: false,
    fanout: hosts.length,
  });
}

/** The lowest imbalance reachable with at most k moves (final placement within capacity), by exhaustive search. */
export function optimum(hosts: BalanceHost[], domains: BalanceDomain[], k: number): number {
  const hi = new Map(hosts.map((h, i) => [h.name, i]));
  const H = hosts.length;
  const wsum = W.cpu + W.memory;
  const load = Float64Array.from(
    hosts.map(
      (h) =>
        hostLoads(
          [h],
          domains.filter((d) => d.host === h.name),
          W,
        ).get(h.name) ?? 0,
    ),
  );
  const mem = Float64Array.from(
    hosts.map((h) => domains.filter((d) => d.host === h.name).reduce((s, d) => s + d.memoryMiB, 0)),
  );
  const vc = Float64Array.from(
    hosts.map((h) => domains.filter((d) => d.host === h.name).reduce((s, d) => s + d.vcpus, 0)),
  );
  const cap = hosts.map((h) => ({ mem: h.memoryMiB, vcpus: h.cpus * 4 }));
  const contrib = (d: BalanceDomain, h: BalanceHost) =>
    (W.cpu * (d.cpuCores / h.cpus) + W.memory * (d.memoryMiB / h.memoryMiB)) / wsum;
  const movable = domains.filter((d) => d.movable);
  let sum = load.reduce((s, x) => s + x, 0);
  let sumSq = load.reduce((s, x) => s + x * x, 0);
  const std = () => Math.sqrt(Math.max(0, sumSq / H - (sum / H) ** 2));
  let best = std();
  const dfs = (from: number, left: number) => {
    for (let i = from; i < movable.length; i++) {
      const d = movable[i] as BalanceDomain;
      const s = hi.get(d.host) as number;
      const src = hosts[s] as BalanceHost;
      for (let t = 0; t < H; t++) {
        if (t === s) continue;
        const tgt = hosts[t] as BalanceHost;
        const out = contrib(d, src);
        const inc = contrib(d, tgt);
        const ls = load[s] as number;
        const lt = load[t] as number;
        load[s] = ls - out;
        load[t] = lt + inc;
        mem[s] = (mem[s] as number) - d.memoryMiB;
        mem[t] = (mem[t] as number) + d.memoryMiB;
        vc[s] = (vc[s] as number) - d.vcpus;
        vc[t] = (vc[t] as number) + d.vcpus;
        sum += inc - out;
        sumSq += (ls - out) ** 2 - ls ** 2 + (lt + inc) ** 2 - lt ** 2;
        // Capacity is checked on the final placement; intermediate overshoot may be ordered away.
        let fits = true;
        for (let h = 0; h < H && fits; h++)
          fits = (mem[h] as number) <= (cap[h]?.mem ?? 0) && (vc[h] as number) <= (cap[h]?.vcpus ?? 0);
        if (fits) best = Math.min(best, std());
        if (left > 1) dfs(i + 1, left - 1);
        sum -= inc - out;
        sumSq -= (ls - out) ** 2 - ls ** 2 + (lt + inc) ** 2 - lt ** 2;
        load[s] = ls;
        load[t] = lt;
        mem[s] = (mem[s] as number) + d.memoryMiB;
        mem[t] = (mem[t] as number) - d.memoryMiB;
        vc[s] = (vc[s] as number) + d.vcpus;
        vc[t] = (vc[t] as number) - d.vcpus;
      }
    }
  };
  dfs(0, k);
  return best;
}

export interface QualityRow {
  shape: Shape;
  seed: number;
  hosts: number;
  domains: number;
  k: number;
  initial: number;
  ours: number;
  greedy: number;
  optimum: number;
}

export interface MovesRow {
  shape: Shape;
  seed: number;
  /** Moves until greedy found no single move that helps, and the imbalance there. */
  greedyMoves: number;
  greedyImbalance: number;
  /** Ours with as many moves. */
  oursImbalance: number;
  /** For greedy's imbalance after k moves: the fewest moves ours needs to reach it (undefined: not within greedy's total). */
  levels: Array<{ greedyMoves: number; imbalance: number; oursMoves: number | undefined }>;
}

export function runBalance(size: "small" | "full") {
  const shapes: Shape[] = ["skewed", "hotspot", "fresh-empty"];
  const seeds = size === "full" ? [1, 2, 3, 4, 5] : [1];
  const smalls: Array<{ hosts: number; domains: number; kMax: number }> =
    size === "full"
      ? [
          { hosts: 8, domains: 40, kMax: 3 },
          { hosts: 6, domains: 24, kMax: 4 },
        ]
      : [{ hosts: 5, domains: 12, kMax: 2 }];
  const quality: QualityRow[] = [];
  for (const s of smalls)
    for (const shape of shapes)
      for (const seed of seeds) {
        const { hosts, domains } = generate(shape, s.hosts, s.domains, seed);
        const initial = imbalance(hosts, hostLoads(hosts, domains, W));
        for (let k = 1; k <= s.kMax; k++)
          quality.push({
            shape,
            seed,
            hosts: s.hosts,
            domains: domains.length,
            k,
            initial,
            ours: ours(hosts, domains, k).projected,
            greedy: greedy(hosts, domains, k).projected,
            optimum: optimum(hosts, domains, k),
          });
      }

  // Moves to reach the imbalance greedy reaches: greedy runs until no single move helps (at most 8
  // per host); ours searches as many moves under the same per-host limit. Levels: greedy's
  // imbalance after 8, 16 and 32 moves, and where it stops.
  const moves: MovesRow[] = [];
  const [mh, md] = size === "full" ? [50, 500] : [10, 60];
  for (const shape of shapes)
    for (const seed of seeds) {
      const { hosts, domains } = generate(shape, mh, md, seed);
      const g = greedy(hosts, domains, 100_000);
      const o = ours(hosts, domains, g.moves.length, 8);
      const gc = g.curve ?? [g.imbalance];
      const oc = o.curve ?? [o.imbalance];
      const levels = [8, 16, 32, g.moves.length].filter((k, i, all) => k <= g.moves.length && all.indexOf(k) === i);
      moves.push({
        shape,
        seed,
        greedyMoves: g.moves.length,
        greedyImbalance: g.projected,
        oursImbalance: o.projected,
        levels: levels.map((k) => {
          const target = gc[k] ?? g.projected;
          const need = oc.findIndex((x) => x <= target + 1e-12);
          return { greedyMoves: k, imbalance: target, oursMoves: need < 0 ? undefined : need };
        }),
      });
    }

  // Decision time at full size.
  const [bh, bd] = size === "full" ? [1000, 10000] : [100, 1000];
  const big = generate("skewed", bh, bd, 42);
  const times: number[] = [];
  let plan = planBalance(big.hosts, big.domains, {
    weights: W,
    threshold: 0.05,
    maxMoves: 4,
    maxMovesPerHost: 2,
    minGain: 0.005,
  });
  for (let i = 0; i < (size === "full" ? 5 : 2); i++) {
    const t0 = performance.now();
    plan = planBalance(big.hosts, big.domains, {
      weights: W,
      threshold: 0.05,
      maxMoves: 4,
      maxMovesPerHost: 2,
      minGain: 0.005,
    });
    times.push(performance.now() - t0);
  }
  const decision = {
    hosts: bh,
    domains: big.domains.length,
    ms: times.sort((a, b) => a - b)[Math.floor(times.length / 2)] as number,
    moves: plan.moves.length,
    before: plan.imbalance,
    after: plan.projected,
  };

  // A 24-hour drifting-load trace, 5-minute passes, cooldown 30 minutes.
  const [th, td] = size === "full" ? [100, 1000] : [10, 80];
  let { hosts: tHosts, domains: tDomains } = generate("hotspot", th, td, 9);
  const r = rng(99);
  const last = new Map<string, number>();
  let violations = 0;
  let traceMoves = 0;
  let sumBefore = 0;
  let sumAfter = 0;
  const passes = 288;
  for (let p = 0; p < passes; p++) {
    const t = p * 300;
    tDomains = tDomains.map((d) => ({
      ...d,
      cpuCores: Math.max(0, Math.min(d.vcpus, d.cpuCores + (r() - 0.5) * 0.5 * d.vcpus)),
      movable: t - (last.get(d.key) ?? Number.NEGATIVE_INFINITY) >= 1800,
    }));
    const pl = planBalance(tHosts, tDomains, {
      weights: W,
      threshold: 0.05,
      maxMoves: 4,
      maxMovesPerHost: 2,
      minGain: 0.005,
    });
    sumBefore += pl.imbalance;
    sumAfter += pl.projected;
    const to = new Map(pl.moves.map((m) => [m.key, m.target]));
    for (const m of pl.moves) {
      const prev = last.get(m.key);
      if (prev !== undefined && t - prev < 1800) violations++;
      last.set(m.key, t);
    }
    traceMoves += pl.moves.length;
    tDomains = tDomains.map((d) => (to.has(d.key) ? { ...d, host: to.get(d.key) as string } : d));
  }
  tHosts = tHosts.slice();
  const trace = {
    hosts: th,
    domains: td,
    passes,
    moves: traceMoves,
    cooldownViolations: violations,
    meanImbalanceBefore: sumBefore / passes,
    meanImbalanceAfter: sumAfter / passes,
  };

  return { quality, moves, decision, trace };
}
