import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { DEFAULT_PACE, type LookFacts, nextLookAt, restAfter } from "../src/xl/pace.ts";

const facts = fc.record<LookFacts>({
  lastEndMs: fc.integer({ min: 0, max: 1e12 }),
  lastCostMs: fc.integer({ min: 0, max: 120_000 }),
  watching: fc.boolean(),
  rang: fc.boolean(),
  migrating: fc.boolean(),
});
const pace = fc
  .record({
    pollMs: fc.integer({ min: 1, max: 60_000 }),
    resyncMs: fc.integer({ min: 1, max: 600_000 }),
    ringMs: fc.integer({ min: 0, max: 10_000 }),
  })
  .filter((p) => p.ringMs <= p.pollMs && p.pollMs <= p.resyncMs);

describe("when the xl driver looks at its domains", () => {
  it("rests four times what a look cost, never less than the minimum", () => {
    assert.equal(restAfter(500, 0), 500);
    assert.equal(restAfter(500, 100), 500);
    assert.equal(restAfter(500, 1450), 5800);
  });

  it("polls every pollMs on a real host, where a look costs milliseconds", () => {
    const f = { lastEndMs: 1000, lastCostMs: 20, watching: false, rang: false, migrating: false };
    assert.equal(nextLookAt(f), 1000 + DEFAULT_PACE.pollMs);
    assert.equal(nextLookAt({ ...f, migrating: true }), 1000 + 5 * DEFAULT_PACE.pollMs);
    assert.equal(nextLookAt({ ...f, watching: true }), 1000 + DEFAULT_PACE.resyncMs);
    assert.equal(nextLookAt({ ...f, watching: true, rang: true }), 1000 + DEFAULT_PACE.ringMs);
  });

  it("on an emulated dom0 (a look costs 1.45 s) looks at most once in 5.8 s, even when rung", () => {
    const f = { lastEndMs: 0, lastCostMs: 1450, watching: true, rang: true, migrating: false };
    assert.equal(nextLookAt(f), 5800);
    assert.equal(nextLookAt({ ...f, watching: false, rang: false }), 5800);
  });

  it("never takes more than a fifth of the time looking, whatever the facts", () => {
    fc.assert(
      fc.property(facts, pace, (f, p) => {
        const gap = nextLookAt(f, p) - f.lastEndMs;
        assert.ok(gap >= 4 * f.lastCostMs, `rest ${gap} after a look of ${f.lastCostMs}`);
      }),
    );
  });

  it("looks sooner after a ring than without one; the watch makes looks rarer, a migration too", () => {
    fc.assert(
      fc.property(facts, pace, (f, p) => {
        assert.ok(nextLookAt({ ...f, rang: true }, p) <= nextLookAt({ ...f, rang: false }, p));
        assert.ok(
          nextLookAt({ ...f, rang: false, watching: true }, p) >=
            nextLookAt({ ...f, rang: false, watching: false, migrating: false }, p),
        );
        assert.ok(nextLookAt({ ...f, migrating: true }, p) >= nextLookAt({ ...f, migrating: false }, p));
        // A ring is answered no later than the poll would have looked anyway.
        assert.ok(nextLookAt({ ...f, rang: true }, p) <= f.lastEndMs + restAfter(p.pollMs, f.lastCostMs));
      }),
    );
  });
});
