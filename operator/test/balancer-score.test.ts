// The balancer's scoring (operator/src/balancer/score.ts): the O(1) update of
// the imbalance when a domain moves agrees with recomputing it from scratch,
// and the migration cost is what decides whether a move pays.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { gibOf, hostLoads, imbalance, Scorer } from "../src/balancer/score.ts";
import type { BalanceDomain, BalanceHost } from "../src/balancer/types.ts";
import { dom, host } from "./balance-fixtures.ts";

const W = { cpu: 0.5, memory: 0.5 };
const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} vs ${b}`);
// Variances, not deviations: near zero the square root magnifies the sums' rounding (1e-18 -> 1e-9).
const closeStd = (a: number, b: number, what: string) => close(a ** 2, b ** 2, what);

const cluster = fc
  .record({
    hosts: fc.array(
      fc.record({ cpus: fc.constantFrom(0, 8, 32), mem: fc.constantFrom(0, 16384, 65536), counted: fc.boolean() }),
      { minLength: 2, maxLength: 6 },
    ),
    domains: fc.array(
      fc.record({ h: fc.nat(), mem: fc.constantFrom(512, 4096), cpu: fc.double({ min: 0, max: 4, noNaN: true }) }),
      { minLength: 1, maxLength: 20 },
    ),
    weights: fc.record({ cpu: fc.constantFrom(0, 0.3, 1), memory: fc.constantFrom(0, 0.7, 1) }),
    pick: fc.nat(),
    to: fc.nat(),
  })
  .map(({ hosts: hs, domains: ds, weights, pick, to }) => {
    const hosts = hs.map((h, i) => host(`h${i}`, { cpus: h.cpus, memoryMiB: h.mem, counted: h.counted }));
    const domains = ds.map((d, i) =>
      dom(`d${i}`, (hosts[d.h % hosts.length] as BalanceHost).name, { memoryMiB: d.mem, cpuCores: d.cpu }),
    );
    return { hosts, domains, weights, pick: pick % domains.length, to: to % hosts.length };
  });

describe("balancer scoring", () => {
  it("starts from the imbalance of the measured loads", () => {
    fc.assert(
      fc.property(cluster, ({ hosts, domains, weights }) => {
        const s = new Scorer(hosts, domains, weights, 0);
        const loads = hostLoads(hosts, domains, weights);
        closeStd(s.std(s.sums0.sum, s.sums0.sumSq), imbalance(hosts, loads), "imbalance");
        for (const [i, h] of hosts.entries()) close(s.load0[i] ?? 0, loads.get(h.name) ?? 0, h.name);
      }),
      { seed: 1, numRuns: 200 },
    );
  });

  it("updates the imbalance of a move in O(1) as a recomputation would, and undoes it", () => {
    fc.assert(
      fc.property(cluster, ({ hosts, domains, weights, pick, to }) => {
        const s = new Scorer(hosts, domains, weights, 0);
        const d = domains[pick] as BalanceDomain;
        const si = hosts.findIndex((h) => h.name === d.host);
        if (si === to) return;
        const [ls, lt] = [s.load0[si] ?? 0, s.load0[to] ?? 0];
        const [out, inc] = [s.contribution(d, si), s.contribution(d, to)];
        const { sum, sumSq } = s.sums0;
        const after = s.afterMove(sum, sumSq, si, ls, out, to, lt, inc);
        const moved = domains.map((x) => (x === d ? { ...x, host: (hosts[to] as BalanceHost).name } : x));
        closeStd(s.std(after.sum, after.sumSq), imbalance(hosts, hostLoads(hosts, moved, weights)), "after the move");
        const back = s.afterMove(after.sum, after.sumSq, si, ls - out, -out, to, lt + inc, -inc);
        close(back.sum, sum, "sum undone");
        close(back.sumSq, sumSq, "sum of squares undone");
      }),
      { seed: 2, numRuns: 300 },
    );
  });

  it("counts an uncounted host's load in no sum", () => {
    const hosts = [host("a"), host("b", { counted: false })];
    const s = new Scorer(hosts, [dom("x", "a")], W, 0);
    const out = s.contribution(dom("x", "a"), 0);
    const after = s.afterMove(s.sums0.sum, s.sums0.sumSq, 0, s.load0[0] ?? 0, out, 1, 0, out);
    assert.deepEqual(after, { sum: 0, sumSq: 0 });
    assert.equal(s.std(after.sum, after.sumSq), 0);
  });

  it("charges minGain per GiB at cluster scale, and a move pays only for a positive gain above it", () => {
    const hosts = ["a", "b", "c", "d"].map((n) => host(n));
    const s = new Scorer(hosts, [], W, 0.01);
    assert.equal(s.scale, 2);
    assert.equal(gibOf(dom("x", "a", { memoryMiB: 2048 })), 2);
    assert.equal(s.cost(2), 0.01);
    // A gain counts times sqrt(4): 0.01 removed pays for 2 GiB, 0.0099 does not.
    assert.equal(s.pays(0.01, 2), true);
    assert.equal(s.pays(0.0099, 2), false);
    assert.equal(s.pays(0, 0), false, "a move that removes nothing never pays, even for free");
    assert.equal(new Scorer(hosts, [], W, 0).pays(1e-15, 64), true);
  });
});
