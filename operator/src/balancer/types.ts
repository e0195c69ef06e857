// The balancer planner's inputs and outputs, shared by its parts (score.ts,
// constraints.ts, search.ts) and re-exported by balancer-plan.ts.
import type { DomainRequest, HostView, OvercommitPolicy } from "../placement.ts";

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
