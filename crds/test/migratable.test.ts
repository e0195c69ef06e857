// One reading of "can this domain live-migrate" for every controller that asks.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { reportedMigratability } from "../src/index.ts";

const cond = (status: "True" | "False", message: string) => ({
  type: "Migratable",
  status,
  reason: status === "True" ? "Migratable" : "PCIPassthrough",
  message,
  lastTransitionTime: "2030-01-01T00:00:00Z",
});

describe("reported migratability", () => {
  it("takes the agent's report, with its reason when it says no", () => {
    assert.deepEqual(reportedMigratability(undefined), { migratable: true }, "not reported yet");
    assert.deepEqual(reportedMigratability({}), { migratable: true });
    assert.deepEqual(reportedMigratability({ migratable: true, conditions: [cond("True", "can live-migrate")] }), {
      migratable: true,
    });
    assert.deepEqual(
      reportedMigratability({ migratable: false, conditions: [cond("False", "passes through 01:00.0")] }),
      { migratable: false, why: "passes through 01:00.0" },
    );
    assert.deepEqual(reportedMigratability({ migratable: false }), { migratable: false }, "the flag alone");
  });

  it("says no when either the condition or the flag says no, and gives a reason only from the condition", () => {
    for (const c of [undefined, "True", "False"] as const)
      for (const flag of [undefined, true, false]) {
        const r = reportedMigratability({ migratable: flag, conditions: c ? [cond(c, "m")] : [] });
        assert.equal(r.migratable, c !== "False" && flag !== false, `${c} ${flag}`);
        assert.equal(r.why, c === "False" ? "m" : undefined);
      }
  });
});
