// Load balancing, pure: a plan of live migrations that lowers the imbalance
// (the standard deviation of host loads, as VMware DRS measures it) by more
// than the migrations cost. Its parts, under balancer/: score.ts (host loads,
// imbalance, migration cost), constraints.ts (which moves are allowed: every
// placement filter the scheduler applies and the balancer's limits) and
// search.ts (a beam search over move sequences with greedy pinned and a
// refinement). See docs/balancing.md for the guarantees.

import { Constraints } from "./balancer/constraints.ts";
import { Scorer } from "./balancer/score.ts";
import { BeamSearch, type SearchOptions } from "./balancer/search.ts";
import type { BalanceDomain, BalanceHost, BalanceParams, BalancePlan } from "./balancer/types.ts";
import { DEFAULT_OVERCOMMIT } from "./placement.ts";

export { hostLoads, imbalance } from "./balancer/score.ts";
export type { BalanceDomain, BalanceHost, BalanceParams, BalancePlan, Move } from "./balancer/types.ts";

export function planBalance(hosts: BalanceHost[], domains: BalanceDomain[], p: BalanceParams): BalancePlan {
  const score = new Scorer(hosts, domains, p.weights, p.minGain);
  const before = score.std(score.sums0.sum, score.sums0.sumSq);
  if (before <= p.threshold)
    return idle(before, `imbalance ${before.toFixed(4)} is within the threshold ${p.threshold}`);
  const rules = new Constraints(hosts, domains, p.maxMovesPerHost, p.policy ?? DEFAULT_OVERCOMMIT);
  const { best, curve } = new BeamSearch(hosts, score, rules, searchOptions(p, hosts.length)).run();
  if (best.moves.length === 0) return idle(before, "no move lowers the imbalance enough to pay for its migration");
  return { imbalance: before, projected: score.std(best.sum, best.sumSq), moves: best.moves, curve };
}

function searchOptions(p: BalanceParams, hosts: number): SearchOptions {
  return {
    maxMoves: p.maxMoves,
    // Small clusters get a wide beam (near-exact, still milliseconds); large ones a narrower one.
    beam: Math.max(1, p.beam ?? (hosts <= 16 ? 128 : 32)),
    fanout: Math.max(1, p.fanout ?? 12),
    refine: p.refine !== false,
  };
}

function idle(imbalance: number, why: string): BalancePlan {
  return { imbalance, projected: imbalance, moves: [], idle: why };
}
