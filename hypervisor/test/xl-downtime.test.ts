import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { downtimeMs } from "../src/xl/downtime.ts";

describe("a live migration's downtime, as the xl driver's looks saw it", () => {
  it("runs from the first look that saw the guest suspended to the end", () => {
    assert.equal(downtimeMs({ seenRunningMs: 1000, seenSuspendedMs: 1500, permissionMs: 1700, endMs: 1800 }), 300);
  });

  it("when no look saw it suspended, is bounded by the last look that saw it running, never 0", () => {
    // On an emulated dom0: looks 5.8 s apart, the last copy between two of them.
    assert.equal(downtimeMs({ seenRunningMs: 10_000, permissionMs: 14_000, endMs: 15_000 }), 5000);
    // No look after the first pass at all: from the permission to start, when the guest was suspended.
    assert.equal(downtimeMs({ permissionMs: 14_000, endMs: 15_000 }), 1000);
    assert.equal(downtimeMs({ endMs: 15_000 }), 0);
  });

  it("contains the true downtime when the looks saw the guest on both sides of its suspension (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1e6 }),
        fc.integer({ min: 1, max: 1e5 }),
        fc.integer({ min: 0, max: 1e5 }),
        fc.integer({ min: 0, max: 1e5 }),
        (running, toSuspend, toSeen, toEnd) => {
          const suspended = running + toSuspend;
          const end = suspended + toSeen + toEnd;
          const truth = end - suspended;
          // Seen suspended after it was: at most the truth. Not seen: at least the truth.
          assert.ok(downtimeMs({ seenRunningMs: running, seenSuspendedMs: suspended + toSeen, endMs: end }) <= truth);
          assert.ok(downtimeMs({ seenRunningMs: running, endMs: end }) >= truth);
        },
      ),
    );
  });
});
