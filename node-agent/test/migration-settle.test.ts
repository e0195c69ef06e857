// The agent's decisions about a migration's domain outside a live stream
// (after a restart mid-migration, or a report the API server did not take).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sourceStart, type TargetFacts, targetSettle } from "../src/migration-settle.ts";

const facts = (over: Partial<TargetFacts> = {}): TargetFacts => ({
  phase: "Transferring",
  targetReported: false,
  sourceReported: false,
  receiving: false,
  dom: undefined,
  ...over,
});

describe("migration settle: source", () => {
  it("sends a domain that runs here; leaves a gone or --migratedaway one to the target's report", () => {
    assert.equal(sourceStart({ state: "running" }, "h").kind, "send");
    assert.equal(sourceStart(undefined, "h").kind, "ambiguous");
    assert.equal(sourceStart({ state: "paused", migration: "migratedaway" }, "h").kind, "ambiguous");
  });
});

describe("migration settle: target", () => {
  it("does nothing while a stream of its own receives", () => {
    assert.deepEqual(targetSettle(facts({ receiving: true, dom: { state: "paused", migration: "incoming" } })), {
      kind: "none",
    });
  });

  it("reports a domain that runs here when the migration waits on it", () => {
    assert.deepEqual(targetSettle(facts({ dom: { state: "running" } })), { kind: "reportRunning" });
    assert.deepEqual(targetSettle(facts({ dom: { state: "running" }, targetReported: true })), { kind: "none" });
  });

  it("removes an --incoming copy no stream fills, and reports only while the migration waits on it", () => {
    const incoming = { state: "paused", migration: "incoming" as const };
    assert.deepEqual(targetSettle(facts({ dom: incoming })), { kind: "discardIncoming", report: true });
    assert.deepEqual(targetSettle(facts({ dom: incoming, phase: "Failed" })), {
      kind: "discardIncoming",
      report: false,
    });
  });

  it("says the domain is not here only once the source has reported (no stream can come after)", () => {
    assert.deepEqual(targetSettle(facts()), { kind: "none" });
    assert.deepEqual(targetSettle(facts({ sourceReported: true })), { kind: "reportAbsent" });
    assert.deepEqual(targetSettle(facts({ sourceReported: true, phase: "Succeeded" })), { kind: "none" });
  });
});
