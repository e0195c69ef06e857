// The balancer's planner, pure: it lowers imbalance on skewed and hot-spot
// clusters, respects every limit and placement filter, never proposes a move
// that does not pay for itself, and over a long drifting-load run (the
// controller's cooldown applied between passes) never moves a domain twice
// within its cooldown.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  type BalanceDomain,
  type BalanceHost,
  type BalanceParams,
  hostLoads,
  imbalance,
  planBalance,
} from "../src/balancer-plan.ts";
import { unfit } from "../src/placement.ts";
import { dom, host } from "./balance-fixtures.ts";

const P: BalanceParams = {
  weights: { cpu: 0.5, memory: 0.5 },
  threshold: 0.05,
  maxMoves: 4,
  maxMovesPerHost: 2,
  minGain: 0.001,
};

/** Applies a plan to the cluster (what Auto mode's migrations do). */
function apply(domains: BalanceDomain[], moves: Array<{ key: string; target: string }>): BalanceDomain[] {
  const to = new Map(moves.map((m) => [m.key, m.target]));
  return domains.map((d) => (to.has(d.key) ? { ...d, host: to.get(d.key) ?? d.host } : d));
}

function checkLimits(
  hosts: BalanceHost[],
  domains: BalanceDomain[],
  p: BalanceParams,
  moves: ReturnType<typeof planBalance>["moves"],
) {
  assert.ok(moves.length <= p.maxMoves, "per-cycle limit");
  const per = new Map<string, number>();
  for (const m of moves) {
    per.set(m.source, (per.get(m.source) ?? 0) + 1);
    per.set(m.target, (per.get(m.target) ?? 0) + 1);
  }
  for (const [h, n] of per) assert.ok(n <= p.maxMovesPerHost, `per-host limit on ${h}`);
  assert.equal(new Set(moves.map((m) => m.key)).size, moves.length, "a domain moves at most once per pass");
  // Replaying the moves in order, each is feasible where it lands.
  let cur = domains;
  for (const m of moves) {
    const d = cur.find((x) => x.key === m.key);
    assert.ok(d?.movable, `${m.key} was movable`);
    const t = hosts.find((h) => h.name === m.target);
    assert.ok(t);
    assert.equal(
      unfit(
        d,
        t,
        cur.filter((x) => x.host === t.name),
      ),
      undefined,
      `${m.key} fits on ${m.target}`,
    );
    cur = apply(cur, [m]);
  }
  return cur;
}

describe("balancer planner", () => {
  it("evens out a skewed cluster", () => {
    const hosts = ["a", "b", "c", "d"].map((n) => host(n));
    const domains = Array.from({ length: 12 }, (_, i) => dom(`d${i}`, "a"));
    const p = { ...P, maxMovesPerHost: 4 };
    const plan = planBalance(hosts, domains, p);
    assert.ok(plan.imbalance > 0.2);
    assert.equal(plan.moves.length, 4, "every move the limits allow pays off here");
    const after = checkLimits(hosts, domains, p, plan.moves);
    const real = imbalance(hosts, hostLoads(hosts, after, P.weights));
    assert.ok(Math.abs(real - plan.projected) < 1e-9, "projection matches the replayed moves");
    assert.ok(plan.projected < plan.imbalance * 0.65, `${plan.imbalance} -> ${plan.projected}`);
    // With only two moves per host, the busy host can shed only two domains.
    assert.equal(planBalance(hosts, domains, P).moves.length, 2);
  });

  it("relieves a CPU hot spot by moving a hungry domain, not the idle ones", () => {
    const hosts = ["a", "b", "c"].map((n) => host(n));
    const domains = [
      dom("hot1", "a", { cpuCores: 6, memoryMiB: 2048 }),
      dom("hot2", "a", { cpuCores: 6, memoryMiB: 2048 }),
      ...Array.from({ length: 3 }, (_, i) => dom(`idle-a${i}`, "a", { cpuCores: 0.05 })),
      ...Array.from({ length: 3 }, (_, i) => dom(`idle-b${i}`, "b", { cpuCores: 0.05 })),
      ...Array.from({ length: 3 }, (_, i) => dom(`idle-c${i}`, "c", { cpuCores: 0.05 })),
    ];
    const plan = planBalance(hosts, domains, { ...P, weights: { cpu: 1, memory: 0 } });
    assert.equal(plan.moves.length, 1);
    assert.match(plan.moves[0]?.key ?? "", /^hot/, "a hungry domain moves, the idle ones stay");
    assert.ok(plan.projected < plan.imbalance);
  });

  it("does nothing within the threshold, or when no move pays for its memory", () => {
    const hosts = ["a", "b"].map((n) => host(n));
    const even = [dom("x", "a"), dom("y", "b")];
    assert.equal(planBalance(hosts, even, P).moves.length, 0);
    assert.match(planBalance(hosts, even, P).idle ?? "", /within the threshold/);
    const lopsided = [dom("x", "a", { memoryMiB: 1024 })];
    assert.equal(planBalance(hosts, lopsided, { ...P, threshold: 0, minGain: 10 }).moves.length, 0);
  });

  it("never moves unmovable domains, never onto cordoned, full or unsuitable hosts", () => {
    const hosts = [
      host("a"),
      host("cordoned", { unschedulable: true }),
      host("maint", { inMaintenance: true }),
      host("small", { memoryMiB: 2048 }),
      host("pvonly", { guestTypes: ["pv"] }),
      host("ok"),
    ];
    const domains = [
      ...Array.from({ length: 6 }, (_, i) => dom(`m${i}`, "a")),
      dom("pinned", "a", { movable: false, cpuCores: 8 }),
    ];
    const plan = planBalance(hosts, domains, { ...P, maxMoves: 6, maxMovesPerHost: 6 });
    assert.ok(plan.moves.length > 0);
    for (const m of plan.moves) {
      assert.equal(m.target, "ok");
      assert.notEqual(m.key, "pinned");
    }
    checkLimits(hosts, domains, { ...P, maxMoves: 6, maxMovesPerHost: 6 }, plan.moves);
  });

  it("respects anti-affinity", () => {
    const hosts = ["a", "b"].map((n) => host(n));
    const domains = [
      dom("w1", "a", { labels: { app: "web" }, antiAffinity: [{ app: "web" }] }),
      dom("w2", "a", { labels: { app: "web" }, antiAffinity: [{ app: "web" }] }),
      dom("w3", "b", { labels: { app: "web" }, antiAffinity: [{ app: "web" }] }),
      dom("x", "a"),
    ];
    const plan = planBalance(hosts, domains, { ...P, threshold: 0 });
    for (const m of plan.moves) assert.ok(!m.key.startsWith("w"), `${m.key} would join another web domain`);
  });

  it("keeps every limit, never worsens the imbalance and never ends above greedy, on random clusters (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ cpus: fc.constantFrom(8, 16, 32), mem: fc.constantFrom(16384, 32768, 65536) }), {
          minLength: 2,
          maxLength: 8,
        }),
        fc.array(
          fc.record({
            h: fc.nat(),
            mem: fc.constantFrom(512, 1024, 2048, 4096),
            cpu: fc.double({ min: 0, max: 4, noNaN: true }),
            movable: fc.boolean(),
          }),
          { maxLength: 40 },
        ),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 3 }),
        (hs, ds, maxMoves, maxMovesPerHost) => {
          const hosts = hs.map((h, i) => host(`h${i}`, { cpus: h.cpus, memoryMiB: h.mem }));
          const domains: BalanceDomain[] = [];
          for (const [i, d] of ds.entries()) {
            const h = hosts[d.h % hosts.length];
            if (!h) continue;
            const x = dom(`d${i}`, h.name, { memoryMiB: d.mem, cpuCores: d.cpu, movable: d.movable });
            if (
              unfit(
                x,
                h,
                domains.filter((y) => y.host === h.name),
              ) === undefined
            )
              domains.push(x);
          }
          const p = { ...P, threshold: 0, maxMoves, maxMovesPerHost };
          const plan = planBalance(hosts, domains, p);
          checkLimits(hosts, domains, p, plan.moves);
          assert.ok(plan.projected <= plan.imbalance + 1e-12);
          // Never worse than DRS's greedy under the same limits: its path stays in the search. Both
          // minimise imbalance plus the migration cost (minGain per GiB, at cluster scale).
          const greedy = planBalance(hosts, domains, { ...p, beam: 1, refine: false, fanout: hosts.length });
          const objective = (x: typeof plan) =>
            x.projected + (p.minGain * x.moves.reduce((s, m) => s + m.memoryMiB / 1024, 0)) / Math.sqrt(hosts.length);
          assert.ok(
            objective(plan) <= objective(greedy) + 1e-12,
            `${objective(plan)} > greedy ${objective(greedy)} (imbalance ${plan.projected} vs ${greedy.projected})`,
          );
        },
      ),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 300) },
    );
  });

  it("revisits an earlier move in the light of the moves after it", () => {
    // Memory only. a: 10+7+3 GiB, b: 6+12, c: empty. Best single move first: 10 GiB a -> c, then
    // 6 GiB b -> c (a 10, b 12, c 16). Moving 7 GiB instead of 10 ends at a 13, b 12, c 13.
    const hosts = ["a", "b", "c"].map((n) => host(n));
    const gib = (key: string, h: string, g: number) => dom(key, h, { memoryMiB: g * 1024, cpuCores: 0 });
    const domains = [gib("d10", "a", 10), gib("d7", "a", 7), gib("d3", "a", 3), gib("d6", "b", 6), gib("d12", "b", 12)];
    const p = {
      ...P,
      weights: { cpu: 0, memory: 1 },
      threshold: 0,
      minGain: 0,
      maxMovesPerHost: 4,
      maxMoves: 2,
      beam: 1,
    };
    const plain = planBalance(hosts, domains, { ...p, refine: false });
    assert.deepEqual(
      plain.moves.map((m) => `${m.key}>${m.target}`),
      ["d10>c", "d6>c"],
    );
    const refined = planBalance(hosts, domains, p);
    assert.deepEqual(refined.moves.map((m) => `${m.key}>${m.target}`).sort(), ["d6>c", "d7>c"]);
    assert.ok(refined.projected < plain.projected / 2, `${refined.projected} vs ${plain.projected}`);
    const after = checkLimits(hosts, domains, p, refined.moves);
    assert.ok(Math.abs(imbalance(hosts, hostLoads(hosts, after, p.weights)) - refined.projected) < 1e-9);
  });

  it("over a long drifting-load run with the cooldown applied, never moves a domain twice within it", () => {
    // 288 passes of 5 minutes (24 hours), loads drifting as a random walk; cooldown 30 minutes.
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const hosts = Array.from({ length: 6 }, (_, i) => host(`h${i}`));
    let domains = Array.from({ length: 48 }, (_, i) => dom(`d${i}`, `h${i % 6}`, { cpuCores: rand() * 2 }));
    const cooldownS = 1800;
    const lastMoved = new Map<string, number>();
    let moves = 0;
    for (let pass = 0; pass < 288; pass++) {
      const t = pass * 300;
      domains = domains.map((d) => ({
        ...d,
        cpuCores: Math.max(0, Math.min(4, d.cpuCores + (rand() - 0.5) * 0.8)),
        movable: t - (lastMoved.get(d.key) ?? -Infinity) >= cooldownS,
      }));
      const plan = planBalance(hosts, domains, P);
      for (const m of plan.moves) {
        const prev = lastMoved.get(m.key);
        assert.ok(prev === undefined || t - prev >= cooldownS, `${m.key} moved again after ${t - (prev ?? 0)} s`);
        lastMoved.set(m.key, t);
      }
      moves += plan.moves.length;
      domains = apply(domains, plan.moves);
    }
    assert.ok(moves > 0, "the drifting load did call for moves");
  });
});
