// HA's plan for a fenced host: which of its domains restart elsewhere, which
// are marked failed, and waiting for migrations of them to settle first.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DomainPhase, RunStrategy } from "@kubexen/crds";
import fc from "fast-check";
import { type HaDomain, type HaFacts, haAction, planFencedHost } from "../src/ha-plan.ts";

const d = (key: string, o: Partial<HaDomain> = {}): HaDomain => ({
  key,
  deleting: false,
  host: "h",
  uuid: `u-${key}`,
  runStrategy: "Always",
  phase: "Running",
  state: "running",
  ...o,
});
const facts = (o: Partial<HaFacts> = {}): HaFacts => ({
  host: "h",
  fenced: true,
  domains: [],
  migrating: new Set(),
  ...o,
});

describe("HA plan for a fenced host", () => {
  it("does nothing while the host is not fenced", () => {
    assert.deepEqual(planFencedHost(facts({ fenced: false, domains: [d("a")] })), { steps: [] });
  });

  it("restarts by runStrategy, marks the others failed once, leaves deleting ones and other hosts' alone", () => {
    const plan = planFencedHost(
      facts({
        domains: [
          d("always"),
          d("rerun", { runStrategy: "RerunOnFailure" }),
          d("rerun-done", { runStrategy: "RerunOnFailure", phase: "Succeeded" }),
          d("once", { runStrategy: "Once" }),
          d("manual-failed", { runStrategy: "Manual", phase: "Failed", state: "absent" }),
          d("halted", { runStrategy: "Halted" }),
          d("deleting", { deleting: true }),
          d("elsewhere", { host: "other" }),
          d("released", { host: undefined }),
        ],
      }),
    );
    assert.deepEqual(plan, {
      steps: [
        { kind: "restart", key: "always" },
        { kind: "restart", key: "rerun" },
        { kind: "markFailed", key: "once", why: "runStrategy Once does not restart it elsewhere" },
      ],
    });
  });

  it("leaves a migrating domain to its migration and looks again after it", () => {
    const plan = planFencedHost(facts({ domains: [d("a"), d("b")], migrating: new Set(["u-a"]) }));
    assert.deepEqual(plan, { steps: [{ kind: "restart", key: "b" }], requeueAfterMs: 2000 });
    assert.deepEqual(planFencedHost(facts({ domains: [d("a", { uuid: undefined })], migrating: new Set([""]) })), {
      steps: [{ kind: "restart", key: "a" }],
    });
  });

  it("acts on each domain as haAction says, once, and waits exactly while one of its domains migrates (property)", () => {
    const strategies: RunStrategy[] = ["Always", "RerunOnFailure", "Once", "Manual", "Halted"];
    const phases: DomainPhase[] = ["Running", "Succeeded", "Failed", "CrashLoopBackOff", "Pending"];
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.array(
          fc.record({
            runStrategy: fc.constantFrom(...strategies),
            phase: fc.constantFrom(...phases),
            state: fc.constantFrom("running", "absent"),
            host: fc.constantFrom("h", "other", undefined),
            deleting: fc.boolean(),
            migrating: fc.boolean(),
          }),
          { maxLength: 12 },
        ),
        (fenced, ds) => {
          const domains = ds.map((x, i) => d(`d${i}`, { ...x, uuid: `u${i}` }));
          const migrating = new Set(ds.flatMap((x, i) => (x.migrating ? [`u${i}`] : [])));
          const plan = planFencedHost(facts({ fenced, domains, migrating }));
          if (!fenced) return assert.deepEqual(plan, { steps: [] });
          const keys = plan.steps.map((s) => s.key);
          assert.equal(new Set(keys).size, keys.length, "at most one step per domain");
          for (const [i, x] of domains.entries()) {
            const step = plan.steps.find((s) => s.key === x.key);
            const busy = migrating.has(`u${i}`);
            const a = haAction(x, busy);
            if (x.host !== "h" || a.kind === "none") assert.equal(step, undefined);
            else if (a.kind === "restart") assert.deepEqual(step, { kind: "restart", key: x.key });
            else if (x.phase === "Failed" && x.state === "absent") assert.equal(step, undefined, "already failed");
            else assert.deepEqual(step, { kind: "markFailed", key: x.key, why: a.why });
            // Never both: a running strategy restarts, the others never do.
            if (step?.kind === "restart") assert.ok(x.runStrategy === "Always" || x.runStrategy === "RerunOnFailure");
          }
          const waits = domains.some((x, i) => x.host === "h" && migrating.has(`u${i}`));
          assert.equal(plan.requeueAfterMs, waits ? 2000 : undefined);
        },
      ),
      { numRuns: 400 },
    );
  });
});
