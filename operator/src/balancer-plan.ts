// Load balancing, pure. Each host's load is one number: the weighted sum of
// its normalised CPU load (measured CPU time of its domains over its CPUs)
// and memory load (memory of its domains over its allocatable memory).
// Imbalance is the population standard deviation of host loads (as VMware
// DRS measures it). The planner searches move sequences with a beam search
// over the most promising moves, from the most loaded hosts to
// the least loaded, under every placement filter the scheduler applies, and
// returns the sequence whose imbalance plus migration cost (minGain per GiB
// moved, at cluster scale) is lowest. See docs/balancing.md for the guarantees.
import {
  DEFAULT_OVERCOMMIT,
  type DomainRequest,
  type HostView,
  type OvercommitPolicy,
  type PlacedDomain,
  unfit,
} from "./placement.ts";

export interface BalanceHost extends HostView {
  /** Whether the host counts in the imbalance (Ready). Cordoned hosts count, but take nothing. */
  counted: boolean;
}

export interface BalanceDomain extends DomainRequest {
  key: string;
  host: string;
  /** Measured CPU use in cores (CPU seconds per second). */
  cpuCores: number;
  /** May move now: live-migratable, no migration under way, out of its cooldown. */
  movable: boolean;
}

export interface BalanceParams {
  weights: { cpu: number; memory: number };
  threshold: number;
  maxMoves: number;
  maxMovesPerHost: number;
  /** Imbalance a move must remove per GiB it transfers. */
  minGain: number;
  /** Beam width of the search (1 is plain greedy); default 128 up to 16 hosts, 32 above. */
  beam?: number;
  /** Most loaded and least loaded hosts considered as sources and targets at each step. */
  fanout?: number;
  /** Improve the best sequence at each length by exchanging moves (default true; false with beam 1 is plain greedy). */
  refine?: boolean;
  policy?: OvercommitPolicy;
}

export interface Move {
  key: string;
  source: string;
  target: string;
  memoryMiB: number;
  /** Imbalance this move removes, given the moves before it. */
  gain: number;
}

export interface BalancePlan {
  imbalance: number;
  projected: number;
  moves: Move[];
  /** Lowest imbalance found with at most k moves, for k = 0, 1, ... (the search's progress). */
  curve?: number[];
  /** Why nothing is proposed, when nothing is. */
  idle?: string;
}

interface Candidate {
  from: State;
  si: number;
  ti: number;
  d: BalanceDomain;
  out: number;
  inc: number;
  gain: number;
  gib: number;
  sum: number;
  sumSq: number;
  objective: number;
}

interface State {
  load: Float64Array; // per host index
  moves: Move[];
  perHost: Int32Array;
  moved: Set<string>;
  /** Sum and sum of squares of counted loads, for O(1) variance updates. */
  sum: number;
  sumSq: number;
  objective: number;
  gib: number;
}

export function hostLoads(
  hosts: BalanceHost[],
  domains: BalanceDomain[],
  weights: { cpu: number; memory: number },
): Map<string, number> {
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

export function planBalance(hosts: BalanceHost[], domains: BalanceDomain[], p: BalanceParams): BalancePlan {
  const policy = p.policy ?? DEFAULT_OVERCOMMIT;
  // Small clusters get a wide beam (near-exact, still milliseconds); large ones a narrower one.
  const beam = Math.max(1, p.beam ?? (hosts.length <= 16 ? 128 : 32));
  const fanout = Math.max(1, p.fanout ?? 12);
  const wsum = p.weights.cpu + p.weights.memory || 1;
  const counted = hosts.map((h) => h.counted);
  const n = counted.filter(Boolean).length;
  const loads = hostLoads(hosts, domains, p.weights);
  const load0 = Float64Array.from(hosts.map((h) => loads.get(h.name) ?? 0));
  const scale = Math.sqrt(Math.max(1, n));
  const std = (sum: number, sumSq: number) => (n ? Math.sqrt(Math.max(0, sumSq / n - (sum / n) ** 2)) : 0);
  let sum0 = 0;
  let sumSq0 = 0;
  for (let i = 0; i < hosts.length; i++)
    if (counted[i]) {
      sum0 += load0[i] ?? 0;
      sumSq0 += (load0[i] ?? 0) ** 2;
    }
  const imb0 = std(sum0, sumSq0);
  if (imb0 <= p.threshold)
    return {
      imbalance: imb0,
      projected: imb0,
      moves: [],
      idle: `imbalance ${imb0.toFixed(4)} is within the threshold ${p.threshold}`,
    };

  // Placements per host, kept as the search moves domains (copy on write per branch).
  const placed0 = new Map<string, PlacedDomain[]>(hosts.map((h) => [h.name, []]));
  const byHost = new Map<string, BalanceDomain[]>();
  const byKey = new Map(domains.map((d) => [d.key, d]));
  for (const d of domains) {
    placed0.get(d.host)?.push(d);
    const list = byHost.get(d.host);
    if (list) list.push(d);
    else byHost.set(d.host, [d]);
  }
  const contribution = (d: BalanceDomain, h: BalanceHost) =>
    (p.weights.cpu * (h.cpus > 0 ? d.cpuCores / h.cpus : 0) +
      p.weights.memory * (h.memoryMiB > 0 ? d.memoryMiB / h.memoryMiB : 0)) /
    wsum;

  /**
   * The running sums of counted loads after `out` leaves host si (now at ls) and `inc` arrives at
   * ti (now at lt): O(1) variance updates. Negative amounts undo a move.
   */
  const afterMove = (
    sum: number,
    sumSq: number,
    si: number,
    ls: number,
    out: number,
    ti: number,
    lt: number,
    inc: number,
  ) => {
    if (counted[si]) {
      sum -= out;
      sumSq += (ls - out) ** 2 - ls ** 2;
    }
    if (counted[ti]) {
      sum += inc;
      sumSq += (lt + inc) ** 2 - lt ** 2;
    }
    return { sum, sumSq };
  };

  const start: State = {
    load: load0,
    moves: [],
    perHost: new Int32Array(hosts.length),
    moved: new Set(),
    sum: sum0,
    sumSq: sumSq0,
    objective: imb0,
    gib: 0,
  };
  const index = new Map(hosts.map((h, i) => [h.name, i]));
  const accepts = (i: number) => {
    const h = hosts[i];
    return !!h && h.ready && !h.unschedulable && !h.inMaintenance;
  };

  /** The state a sequence of moves leads to, or undefined if some move in it no longer pays. */
  const stateOf = (moves: Array<Pick<Move, "key" | "source" | "target">>): State | undefined => {
    const load = Float64Array.from(load0);
    const perHost = new Int32Array(hosts.length);
    let sum = sum0;
    let sumSq = sumSq0;
    let gib = 0;
    const out: Move[] = [];
    for (const m of moves) {
      const d = byKey.get(m.key);
      const si = index.get(m.source);
      const ti = index.get(m.target);
      if (!d || si === undefined || ti === undefined) return undefined;
      const before = std(sum, sumSq);
      const ls = load[si] ?? 0;
      const lt = load[ti] ?? 0;
      const o = contribution(d, hosts[si] as BalanceHost);
      const inc = contribution(d, hosts[ti] as BalanceHost);
      ({ sum, sumSq } = afterMove(sum, sumSq, si, ls, o, ti, lt, inc));
      load[si] = ls - o;
      load[ti] = lt + inc;
      perHost[si] = (perHost[si] ?? 0) + 1;
      perHost[ti] = (perHost[ti] ?? 0) + 1;
      const gain = before - std(sum, sumSq);
      const g = d.memoryMiB / 1024;
      // Every move must still pay for itself where it stands in the sequence.
      if (gain <= 0 || gain * scale < p.minGain * g) return undefined;
      gib += g;
      out.push({ key: m.key, source: m.source, target: m.target, memoryMiB: d.memoryMiB, gain });
    }
    return {
      load,
      moves: out,
      perHost,
      moved: new Set(out.map((m) => m.key)),
      sum,
      sumSq,
      gib,
      objective: std(sum, sumSq) + (p.minGain * gib) / scale,
    };
  };

  /** What a host holds from the point of move `at` on, at its fullest: every move into it, only the moves out before `at`. */
  const fullest = (moves: Move[], at: number, host: string): PlacedDomain[] => {
    const gone = new Set(moves.filter((m, j) => j < at && m.source === host).map((m) => m.key));
    const list = (placed0.get(host) ?? []).filter((d) => !gone.has((d as BalanceDomain).key));
    for (const [j, m] of moves.entries()) {
      const d = j !== at && m.target === host ? byKey.get(m.key) : undefined;
      if (d) list.push(d);
    }
    return list;
  };

  /**
   * Local improvement of a sequence: replace one move by another from the same source (another
   * domain, another target, or both) while that lowers the objective. Beam search commits to
   * moves that looked best when made; this revisits them in the light of the moves after them.
   */
  const polish = (s: State): State => {
    let cur = s;
    for (let round = 0; round < 2 * cur.moves.length + 4; round++) {
      const alts: Array<{ i: number; d: BalanceDomain; ti: number; objective: number }> = [];
      for (const [i, m] of cur.moves.entries()) {
        const si = index.get(m.source) as number;
        const t0 = index.get(m.target) as number;
        const src = hosts[si] as BalanceHost;
        const d0 = byKey.get(m.key) as BalanceDomain;
        const o0 = contribution(d0, src);
        const i0 = contribution(d0, hosts[t0] as BalanceHost);
        // The source and the target as if move i were not made.
        const base = afterMove(cur.sum, cur.sumSq, si, cur.load[si] ?? 0, -o0, t0, cur.load[t0] ?? 0, -i0);
        const ls = (cur.load[si] ?? 0) + o0;
        const l0 = (cur.load[t0] ?? 0) - i0;
        for (const d of byHost.get(m.source) ?? []) {
          if (!d.movable || (d !== d0 && cur.moved.has(d.key))) continue;
          const o = contribution(d, src);
          for (let ti = 0; ti < hosts.length; ti++) {
            if (ti === si || (d === d0 && ti === t0) || !accepts(ti)) continue;
            if ((cur.perHost[ti] ?? 0) - (ti === t0 ? 1 : 0) >= p.maxMovesPerHost) continue;
            const inc = contribution(d, hosts[ti] as BalanceHost);
            const lt = ti === t0 ? l0 : (cur.load[ti] ?? 0);
            const { sum, sumSq } = afterMove(base.sum, base.sumSq, si, ls, o, ti, lt, inc);
            const objective =
              std(sum, sumSq) + (p.minGain * (cur.gib - d0.memoryMiB / 1024 + d.memoryMiB / 1024)) / scale;
            if (objective < cur.objective - 1e-12) alts.push({ i, d, ti, objective });
          }
        }
      }
      if (alts.length === 0) break;
      alts.sort((a, b) => a.objective - b.objective);
      let next: State | undefined;
      for (const a of alts) {
        const m = cur.moves[a.i] as Move;
        const tgt = hosts[a.ti] as BalanceHost;
        if (unfit(a.d, tgt, fullest(cur.moves, a.i, tgt.name), policy)) continue;
        if (a.d.key !== m.key) {
          // The domain that no longer moves stays on its source: it must fit there with everything that arrives.
          const stay = fullest(cur.moves, a.i, m.source).filter((x) => (x as BalanceDomain).key !== a.d.key);
          if (
            unfit(byKey.get(m.key) as BalanceDomain, hosts[index.get(m.source) as number] as BalanceHost, stay, policy)
          )
            continue;
        }
        const moves = cur.moves.map((x, j) => (j === a.i ? { key: a.d.key, source: m.source, target: tgt.name } : x));
        next = stateOf(moves);
        if (next && next.objective < cur.objective - 1e-12) break;
        next = undefined;
      }
      if (!next) break;
      cur = next;
    }
    return cur;
  };

  let frontier: State[] = [start];
  let best = start;
  const curve: number[] = [imb0];
  const candidates = (frontier: State[], fanout: number): Candidate[] => {
    const next: Candidate[] = [];
    for (const s of frontier) {
      const order = hosts
        .map((_, i) => i)
        .filter((i) => counted[i] || (byHost.get(hosts[i]?.name ?? "")?.length ?? 0) > 0);
      order.sort((a, b) => (s.load[b] ?? 0) - (s.load[a] ?? 0));
      // Hosts at their move limit take no part: they would only use up the fanout.
      const open = order.filter((i) => (s.perHost[i] ?? 0) < p.maxMovesPerHost);
      const sources = open.slice(0, fanout);
      const targets = open.reverse().filter(accepts).slice(0, fanout);
      const cur = std(s.sum, s.sumSq);
      const cache = new Map<string, PlacedDomain[]>();
      const placedOf = (name: string) => {
        let v = cache.get(name);
        if (!v) {
          v = currentPlacement(placed0, s.moves, name, byKey);
          cache.set(name, v);
        }
        return v;
      };
      for (const si of sources) {
        const src = hosts[si];
        if (!src || (s.perHost[si] ?? 0) >= p.maxMovesPerHost) continue;
        const cands = (byHost.get(src.name) ?? []).filter((d) => d.movable && !s.moved.has(d.key));
        // The domains that shift the most load, heaviest first.
        cands.sort((a, b) => contribution(b, src) - contribution(a, src));
        for (const d of cands.slice(0, fanout * 2)) {
          const out = contribution(d, src);
          for (const ti of targets) {
            const tgt = hosts[ti];
            if (!tgt || ti === si || (s.perHost[ti] ?? 0) >= p.maxMovesPerHost) continue;
            const inc = contribution(d, tgt);
            const ls = s.load[si] ?? 0;
            const lt = s.load[ti] ?? 0;
            const { sum, sumSq } = afterMove(s.sum, s.sumSq, si, ls, out, ti, lt, inc);
            const after = std(sum, sumSq);
            const gain = cur - after;
            const gib = d.memoryMiB / 1024;
            // Worth its cost: the imbalance it removes must pay for the memory it moves. Gains are
            // compared at cluster scale (times sqrt(n)): one move shifts a std of n hosts by ~1/sqrt(n).
            if (gain <= 0 || gain * scale < p.minGain * gib) continue;
            if (unfit(d, tgt, placedOf(tgt.name), policy)) continue;
            // Materialised only if it makes the beam: copying per candidate would cost O(hosts) each.
            next.push({
              from: s,
              si,
              ti,
              d,
              out,
              inc,
              gain,
              gib,
              sum,
              sumSq,
              objective: after + (p.minGain * (s.gib + gib)) / scale,
            });
          }
        }
      }
    }
    return next;
  };

  const moveOf = (c: Candidate): Move => ({
    key: c.d.key,
    source: hosts[c.si]?.name ?? "",
    target: hosts[c.ti]?.name ?? "",
    memoryMiB: c.d.memoryMiB,
    gain: c.gain,
  });
  const signature = (c: Candidate) =>
    [...c.from.moves, moveOf(c)]
      .map((m) => `${m.key}>${m.target}`)
      .sort()
      .join("|");
  const materialize = (c: Candidate): State => {
    const load = Float64Array.from(c.from.load);
    load[c.si] = (load[c.si] ?? 0) - c.out;
    load[c.ti] = (load[c.ti] ?? 0) + c.inc;
    const perHost = Int32Array.from(c.from.perHost);
    perHost[c.si] = (perHost[c.si] ?? 0) + 1;
    perHost[c.ti] = (perHost[c.ti] ?? 0) + 1;
    return {
      load,
      moves: [...c.from.moves, moveOf(c)],
      perHost,
      moved: new Set([...c.from.moved, c.d.key]),
      sum: c.sum,
      sumSq: c.sumSq,
      gib: c.from.gib + c.gib,
      objective: c.objective,
    };
  };

  // Plain greedy (refine: false) is the baseline itself; the planner pins the greedy path.
  let pinned: State | undefined = p.refine === false ? undefined : start;
  for (let step = 0; step < p.maxMoves; step++) {
    let next = candidates(frontier, fanout);
    // Near balance the moves that still help may lie between middling hosts: look at all of them.
    if (next.length === 0 && fanout < hosts.length) next = candidates(frontier, hosts.length);
    if (next.length === 0) break;
    next.sort((a, b) => a.objective - b.objective || a.from.moves.length - b.from.moves.length);
    // Keep distinct branches: the same set of moves reached in another order is one state.
    const seen = new Set<string>();
    frontier = [];
    for (const c of next) {
      const sig = signature(c);
      if (seen.has(sig)) continue;
      seen.add(sig);
      frontier.push(materialize(c));
      if (frontier.length >= beam) break;
    }
    // The greedy path stays in the beam: DRS's best single move, repeated (from every host up to 64
    // hosts, from the fanout above), so no budget ends worse than greedy would.
    if (pinned) {
      const children = candidates([pinned], hosts.length <= 64 ? hosts.length : fanout);
      children.sort((x, y) => x.objective - y.objective);
      const c = children[0];
      pinned = c && materialize(c);
      if (c && pinned && !seen.has(signature(c))) frontier.push(pinned);
      if (pinned && pinned.objective < best.objective - 1e-12) best = pinned;
    }
    const top = frontier[0] && (p.refine === false ? frontier[0] : polish(frontier[0]));
    if (top && top !== frontier[0]) frontier.unshift(top);
    if (top && top.objective < best.objective - 1e-12) best = top;
    curve.push(std(best.sum, best.sumSq));
  }
  const projected = std(best.sum, best.sumSq);
  if (best.moves.length === 0)
    return {
      imbalance: imb0,
      projected: imb0,
      moves: [],
      idle: "no move lowers the imbalance enough to pay for its migration",
    };
  return { imbalance: imb0, projected, moves: best.moves, curve };
}

/** A host's placements after the moves of a branch (the moves are few: rebuilt on demand). */
function currentPlacement(
  placed0: Map<string, PlacedDomain[]>,
  moves: Move[],
  host: string,
  byKey: Map<string, BalanceDomain>,
): PlacedDomain[] {
  const base = placed0.get(host) ?? [];
  if (moves.length === 0) return base;
  const out = new Set(moves.filter((m) => m.source === host).map((m) => m.key));
  const inKeys = moves.filter((m) => m.target === host).map((m) => m.key);
  const list = out.size ? base.filter((d) => !out.has((d as BalanceDomain).key)) : base.slice();
  for (const k of inKeys) {
    const d = byKey.get(k);
    if (d) list.push(d);
  }
  return list;
}
