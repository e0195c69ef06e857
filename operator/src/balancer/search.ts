// The balancer's search, pure: a beam search over move sequences, from the
// most loaded hosts to the least loaded, keeping the `beam` branches with the
// lowest objective (score.ts) at each length; DRS's greedy path pinned in the
// beam so that no budget ends worse than greedy; and a refinement that
// revisits the best branch's earlier moves in the light of the later ones.
// Only moves the constraints allow (constraints.ts) are ever made.
import type { Constraints } from "./constraints.ts";
import { gibOf, type Scorer } from "./score.ts";
import type { BalanceDomain, BalanceHost, Move } from "./types.ts";

export interface SearchOptions {
  maxMoves: number;
  /** Branches kept at each length (1: plain greedy). */
  beam: number;
  /** Most loaded and least loaded hosts considered as sources and targets at each step. */
  fanout: number;
  /** Pin the greedy path and polish the best branch at each length. */
  refine: boolean;
}

/** A branch: the moves made and the loads, move counts and sums they lead to. */
export interface State {
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

/** A move from a branch, scored but not materialised (copying per candidate would cost O(hosts) each). */
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

export interface SearchResult {
  best: State;
  /** Lowest imbalance found with at most k moves, for k = 0, 1, ... */
  curve: number[];
}

export class BeamSearch {
  private readonly hosts: BalanceHost[];
  private readonly score: Scorer;
  private readonly rules: Constraints;
  private readonly o: SearchOptions;

  constructor(hosts: BalanceHost[], score: Scorer, rules: Constraints, o: SearchOptions) {
    this.hosts = hosts;
    this.score = score;
    this.rules = rules;
    this.o = o;
  }

  /** The branch with no move. */
  start(): State {
    const s = this.score;
    return {
      load: s.load0,
      moves: [],
      perHost: new Int32Array(this.hosts.length),
      moved: new Set(),
      sum: s.sums0.sum,
      sumSq: s.sums0.sumSq,
      objective: s.std(s.sums0.sum, s.sums0.sumSq),
      gib: 0,
    };
  }

  run(): SearchResult {
    const start = this.start();
    let frontier: State[] = [start];
    let best = start;
    const curve: number[] = [start.objective];
    // Plain greedy (refine: false) is the baseline itself; the planner pins the greedy path.
    let pinned: State | undefined = this.o.refine ? start : undefined;
    for (let step = 0; step < this.o.maxMoves; step++) {
      const next = this.extensions(frontier);
      if (next.length === 0) break;
      const seen = new Set<string>();
      frontier = this.prune(next, seen);
      if (pinned) {
        pinned = this.followGreedy(pinned, frontier, seen);
        if (pinned && pinned.objective < best.objective - 1e-12) best = pinned;
      }
      const top = frontier[0] && (this.o.refine ? this.polish(frontier[0]) : frontier[0]);
      if (top && top !== frontier[0]) frontier.unshift(top);
      if (top && top.objective < best.objective - 1e-12) best = top;
      curve.push(this.score.std(best.sum, best.sumSq));
    }
    return { best, curve };
  }

  /** The frontier's allowed one-move extensions, best first. */
  private extensions(frontier: State[]): Candidate[] {
    const { fanout } = this.o;
    const all = this.hosts.length;
    let next = this.candidates(frontier, fanout);
    // Near balance the moves that still help may lie between middling hosts: look at all of them.
    if (next.length === 0 && fanout < all) next = this.candidates(frontier, all);
    next.sort((a, b) => a.objective - b.objective || a.from.moves.length - b.from.moves.length);
    return next;
  }

  /** The best `beam` distinct branches among `next` (sorted); their signatures go into `seen`. */
  private prune(next: Candidate[], seen: Set<string>): State[] {
    // Keep distinct branches: the same set of moves reached in another order is one state.
    const frontier: State[] = [];
    for (const c of next) {
      const sig = this.signature(c);
      if (seen.has(sig)) continue;
      seen.add(sig);
      frontier.push(this.materialize(c));
      if (frontier.length >= this.o.beam) break;
    }
    return frontier;
  }

  /**
   * One more step on the greedy path, kept in the frontier: DRS's best single move, repeated (from
   * every host up to 64 hosts, from the fanout above), so no budget ends worse than greedy would.
   */
  private followGreedy(pinned: State, frontier: State[], seen: Set<string>): State | undefined {
    const all = this.hosts.length;
    const children = this.candidates([pinned], all <= 64 ? all : this.o.fanout);
    children.sort((x, y) => x.objective - y.objective);
    const c = children[0];
    const next = c && this.materialize(c);
    if (c && next && !seen.has(this.signature(c))) frontier.push(next);
    return next;
  }

  /** Every allowed move that pays for itself, from the `fanout` most loaded hosts to the `fanout` least loaded. */
  private candidates(frontier: State[], fanout: number): Candidate[] {
    const { hosts, score, rules } = this;
    const next: Candidate[] = [];
    for (const s of frontier) {
      const order = hosts
        .map((_, i) => i)
        .filter((i) => score.counted[i] || rules.domainsOn(hosts[i]?.name ?? "").length > 0);
      order.sort((a, b) => (s.load[b] ?? 0) - (s.load[a] ?? 0));
      // Hosts at their move limit take no part: they would only use up the fanout.
      const open = order.filter((i) => !rules.atLimit(s.perHost, i));
      const sources = open.slice(0, fanout);
      const targets = open
        .reverse()
        .filter((i) => rules.accepts(i))
        .slice(0, fanout);
      const cur = score.std(s.sum, s.sumSq);
      const cache = new Map<string, ReturnType<Constraints["placement"]>>();
      const placedOf = (name: string) => {
        let v = cache.get(name);
        if (!v) {
          v = rules.placement(s.moves, name);
          cache.set(name, v);
        }
        return v;
      };
      for (const si of sources) {
        const src = hosts[si];
        if (!src || rules.atLimit(s.perHost, si)) continue;
        const cands = rules.domainsOn(src.name).filter((d) => rules.mayMove(d, s.moved));
        // The domains that shift the most load, heaviest first.
        cands.sort((a, b) => score.contribution(b, si) - score.contribution(a, si));
        for (const d of cands.slice(0, fanout * 2)) {
          const out = score.contribution(d, si);
          for (const ti of targets) {
            const tgt = hosts[ti];
            if (!tgt || ti === si || rules.atLimit(s.perHost, ti)) continue;
            const inc = score.contribution(d, ti);
            const ls = s.load[si] ?? 0;
            const lt = s.load[ti] ?? 0;
            const { sum, sumSq } = score.afterMove(s.sum, s.sumSq, si, ls, out, ti, lt, inc);
            const after = score.std(sum, sumSq);
            const gain = cur - after;
            const gib = gibOf(d);
            // Worth its cost: the imbalance it removes must pay for the memory it moves.
            if (!score.pays(gain, gib)) continue;
            if (!rules.fits(d, tgt, placedOf(tgt.name))) continue;
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
              objective: after + score.cost(s.gib + gib),
            });
          }
        }
      }
    }
    return next;
  }

  private moveOf(c: Candidate): Move {
    return {
      key: c.d.key,
      source: this.hosts[c.si]?.name ?? "",
      target: this.hosts[c.ti]?.name ?? "",
      memoryMiB: c.d.memoryMiB,
      gain: c.gain,
    };
  }

  /** The set of moves a candidate leads to, whatever their order. */
  private signature(c: Candidate): string {
    return [...c.from.moves, this.moveOf(c)]
      .map((m) => `${m.key}>${m.target}`)
      .sort()
      .join("|");
  }

  private materialize(c: Candidate): State {
    const load = Float64Array.from(c.from.load);
    load[c.si] = (load[c.si] ?? 0) - c.out;
    load[c.ti] = (load[c.ti] ?? 0) + c.inc;
    const perHost = Int32Array.from(c.from.perHost);
    perHost[c.si] = (perHost[c.si] ?? 0) + 1;
    perHost[c.ti] = (perHost[c.ti] ?? 0) + 1;
    return {
      load,
      moves: [...c.from.moves, this.moveOf(c)],
      perHost,
      moved: new Set([...c.from.moved, c.d.key]),
      sum: c.sum,
      sumSq: c.sumSq,
      gib: c.from.gib + c.gib,
      objective: c.objective,
    };
  }

  /** The state a sequence of moves leads to, or undefined if some move in it no longer pays. */
  replay(moves: Array<Pick<Move, "key" | "source" | "target">>): State | undefined {
    const { hosts, score, rules } = this;
    const load = Float64Array.from(score.load0);
    const perHost = new Int32Array(hosts.length);
    let { sum, sumSq } = score.sums0;
    let gib = 0;
    const out: Move[] = [];
    for (const m of moves) {
      const d = rules.byKey.get(m.key);
      const si = rules.index.get(m.source);
      const ti = rules.index.get(m.target);
      if (!d || si === undefined || ti === undefined) return undefined;
      const before = score.std(sum, sumSq);
      const ls = load[si] ?? 0;
      const lt = load[ti] ?? 0;
      const o = score.contribution(d, si);
      const inc = score.contribution(d, ti);
      ({ sum, sumSq } = score.afterMove(sum, sumSq, si, ls, o, ti, lt, inc));
      load[si] = ls - o;
      load[ti] = lt + inc;
      perHost[si] = (perHost[si] ?? 0) + 1;
      perHost[ti] = (perHost[ti] ?? 0) + 1;
      const gain = before - score.std(sum, sumSq);
      const g = gibOf(d);
      // Every move must still pay for itself where it stands in the sequence.
      if (!score.pays(gain, g)) return undefined;
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
      objective: score.std(sum, sumSq) + score.cost(gib),
    };
  }

  /**
   * Local improvement of a sequence: replace one move by another from the same source (another
   * domain, another target, or both) while that lowers the objective. Beam search commits to
   * moves that looked best when made; this revisits them in the light of the moves after them.
   */
  polish(s: State): State {
    const { hosts, score, rules } = this;
    let cur = s;
    for (let round = 0; round < 2 * cur.moves.length + 4; round++) {
      const alts: Array<{ i: number; d: BalanceDomain; ti: number; objective: number }> = [];
      for (const [i, m] of cur.moves.entries()) {
        const si = rules.index.get(m.source) as number;
        const t0 = rules.index.get(m.target) as number;
        const d0 = rules.byKey.get(m.key) as BalanceDomain;
        const o0 = score.contribution(d0, si);
        const i0 = score.contribution(d0, t0);
        // The source and the target as if move i were not made.
        const base = score.afterMove(cur.sum, cur.sumSq, si, cur.load[si] ?? 0, -o0, t0, cur.load[t0] ?? 0, -i0);
        const ls = (cur.load[si] ?? 0) + o0;
        const l0 = (cur.load[t0] ?? 0) - i0;
        for (const d of rules.domainsOn(m.source)) {
          // The domain of move i itself may take another target.
          if (!(d === d0 ? d.movable : rules.mayMove(d, cur.moved))) continue;
          const o = score.contribution(d, si);
          for (let ti = 0; ti < hosts.length; ti++) {
            if (ti === si || (d === d0 && ti === t0) || !rules.accepts(ti)) continue;
            if (rules.atLimit(cur.perHost, ti, ti === t0 ? 1 : 0)) continue;
            const inc = score.contribution(d, ti);
            const lt = ti === t0 ? l0 : (cur.load[ti] ?? 0);
            const { sum, sumSq } = score.afterMove(base.sum, base.sumSq, si, ls, o, ti, lt, inc);
            const objective = score.std(sum, sumSq) + score.cost(cur.gib - gibOf(d0) + gibOf(d));
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
        if (!rules.allowsReplacement(cur.moves, a.i, a.d, tgt)) continue;
        const moves = cur.moves.map((x, j) => (j === a.i ? { key: a.d.key, source: m.source, target: tgt.name } : x));
        next = this.replay(moves);
        if (next && next.objective < cur.objective - 1e-12) break;
        next = undefined;
      }
      if (!next) break;
      cur = next;
    }
    return cur;
  }
}
