// Which moves the balancer may propose, pure. A domain moves only if the
// controller marked it movable (live-migratable, no migration under way, out
// of its cooldown) and it has not moved yet in this plan; a host takes part in
// at most maxMovesPerHost moves, as source or target; a target must take
// domains (Ready, not cordoned, not in maintenance) and pass every placement
// filter the scheduler applies (placement.ts: guest type, host selector,
// anti-affinity, PCI devices, capacity) given the moves before.
import { type OvercommitPolicy, type PlacedDomain, unfit } from "../placement.ts";
import type { BalanceDomain, BalanceHost, Move } from "./types.ts";

type Step = Pick<Move, "key" | "source" | "target">;

export class Constraints {
  /** Host index by name. */
  readonly index: Map<string, number>;
  readonly byKey: Map<string, BalanceDomain>;
  private readonly hosts: BalanceHost[];
  private readonly maxMovesPerHost: number;
  private readonly policy: OvercommitPolicy;
  /** What each host holds before any move. */
  private readonly placed0: Map<string, PlacedDomain[]>;
  private readonly byHost: Map<string, BalanceDomain[]>;

  constructor(hosts: BalanceHost[], domains: BalanceDomain[], maxMovesPerHost: number, policy: OvercommitPolicy) {
    this.hosts = hosts;
    this.maxMovesPerHost = maxMovesPerHost;
    this.policy = policy;
    this.placed0 = new Map(hosts.map((h) => [h.name, []]));
    this.byHost = new Map();
    this.byKey = new Map(domains.map((d) => [d.key, d]));
    for (const d of domains) {
      this.placed0.get(d.host)?.push(d);
      const list = this.byHost.get(d.host);
      if (list) list.push(d);
      else this.byHost.set(d.host, [d]);
    }
    this.index = new Map(hosts.map((h, i) => [h.name, i]));
  }

  /** The domains on a host before any move. */
  domainsOn(host: string): readonly BalanceDomain[] {
    return this.byHost.get(host) ?? [];
  }

  /** Whether the host at index `i` takes domains at all. */
  accepts(i: number): boolean {
    const h = this.hosts[i];
    return !!h && h.ready && !h.unschedulable && !h.inMaintenance;
  }

  /** Whether the host at index `i` has used up its moves (`freed`: moves of it about to be undone). */
  atLimit(perHost: Int32Array, i: number, freed = 0): boolean {
    return (perHost[i] ?? 0) - freed >= this.maxMovesPerHost;
  }

  /** Whether `d` may still move in a plan that already moved `moved`. */
  mayMove(d: BalanceDomain, moved: ReadonlySet<string>): boolean {
    return d.movable && !moved.has(d.key);
  }

  /** Whether `target`, holding `placed`, can take `d` under every placement filter. */
  fits(d: BalanceDomain, target: BalanceHost, placed: readonly PlacedDomain[]): boolean {
    return !unfit(d, target, placed, this.policy);
  }

  /** A host's placements after a plan's moves (the moves are few: rebuilt on demand). */
  placement(moves: readonly Step[], host: string): PlacedDomain[] {
    const base = this.placed0.get(host) ?? [];
    if (moves.length === 0) return base;
    const out = new Set(moves.filter((m) => m.source === host).map((m) => m.key));
    const inKeys = moves.filter((m) => m.target === host).map((m) => m.key);
    const list = out.size ? base.filter((d) => !out.has((d as BalanceDomain).key)) : base.slice();
    for (const k of inKeys) {
      const d = this.byKey.get(k);
      if (d) list.push(d);
    }
    return list;
  }

  /**
   * Whether move `at` of a plan may be replaced by moving `d` (from the same source) to `target`.
   * Moves keep their order but a replacement changes what each host holds at every point after
   * it, so each host is checked at its fullest; the domain that no longer moves stays on its
   * source and must fit there with everything that arrives.
   */
  allowsReplacement(moves: readonly Step[], at: number, d: BalanceDomain, target: BalanceHost): boolean {
    if (!this.fits(d, target, this.fullest(moves, at, target.name))) return false;
    const m = moves[at] as Step;
    if (d.key !== m.key) {
      const stay = this.fullest(moves, at, m.source).filter((x) => (x as BalanceDomain).key !== d.key);
      const source = this.hosts[this.index.get(m.source) as number] as BalanceHost;
      if (!this.fits(this.byKey.get(m.key) as BalanceDomain, source, stay)) return false;
    }
    return true;
  }

  /** What a host holds from the point of move `at` on, at its fullest: every move into it, only the moves out before `at`. */
  private fullest(moves: readonly Step[], at: number, host: string): PlacedDomain[] {
    const gone = new Set(moves.filter((m, j) => j < at && m.source === host).map((m) => m.key));
    const list = (this.placed0.get(host) ?? []).filter((d) => !gone.has((d as BalanceDomain).key));
    for (const [j, m] of moves.entries()) {
      const d = j !== at && m.target === host ? this.byKey.get(m.key) : undefined;
      if (d) list.push(d);
    }
    return list;
  }
}
