// Maintenance decisions, pure: every evictionStrategy in every state, the
// fallback after failed migrations, capacity admission, and the ETA.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  admitMaintenances,
  type DrainDomain,
  drainActions,
  etaSeconds,
  MAX_ATTEMPTS,
} from "../src/maintenance-plan.ts";

const dom = (o: Partial<DrainDomain> = {}): DrainDomain => ({
  key: "ns/d",
  memoryMiB: 512,
  phase: "Running",
  state: "running",
  evictionStrategy: "LiveMigrateIfPossible",
  runStrategy: "Always",
  migratable: true,
  evictedByThis: false,
  saved: false,
  ...o,
});
const kind = (d: DrainDomain, failures = 0, active = false) =>
  drainActions(
    [d],
    [
      ...Array.from({ length: failures }, () => ({ domainKey: d.key, phase: "Failed", failureReason: "boom" })),
      ...(active ? [{ domainKey: d.key, phase: "Transferring" }] : []),
    ],
  )[0];

describe("drain actions", () => {
  it("follows each evictionStrategy for migratable and unmigratable running domains", () => {
    assert.deepEqual(kind(dom()), { kind: "migrate", domainKey: "ns/d", attempt: 1, priority: 512 });
    assert.equal(kind(dom({ migratable: false, notMigratableWhy: "pv" }))?.kind, "evict");
    assert.equal(kind(dom({ evictionStrategy: "Restart" }))?.kind, "evict");
    assert.equal(kind(dom({ evictionStrategy: "LiveMigrate" }))?.kind, "migrate");
    assert.deepEqual(kind(dom({ evictionStrategy: "LiveMigrate", migratable: false, notMigratableWhy: "pv" })), {
      kind: "blocked",
      domainKey: "ns/d",
      reason: "cannot live-migrate: pv",
    });
    assert.equal(kind(dom({ evictionStrategy: "None" }))?.kind, "blocked");
  });

  it("retries failed migrations, then restarts (IfPossible) or blocks (LiveMigrate)", () => {
    assert.equal((kind(dom(), MAX_ATTEMPTS - 1) as { attempt: number }).attempt, MAX_ATTEMPTS);
    assert.equal(kind(dom(), MAX_ATTEMPTS)?.kind, "evict");
    assert.match(
      (kind(dom({ evictionStrategy: "LiveMigrate" }), MAX_ATTEMPTS) as { reason: string }).reason,
      /3 live migrations failed, the last: boom/,
    );
    assert.equal(kind(dom(), 0, true)?.kind, "inProgress");
  });

  it("releases domains at rest or already stopped for it, waits for settling ones, blocks saved ones", () => {
    assert.equal(kind(dom({ state: "absent", phase: "Stopped" }))?.kind, "release");
    assert.equal(kind(dom({ state: "absent", phase: "CrashLoopBackOff" }))?.kind, "release");
    assert.equal(kind(dom({ state: "absent", phase: "Starting" }))?.kind, "inProgress");
    assert.equal(kind(dom({ state: "absent", phase: "Stopping", evictedByThis: true }))?.kind, "release");
    assert.equal(kind(dom({ evictedByThis: true }))?.kind, "inProgress");
    assert.equal(kind(dom({ state: "absent", phase: "Saved", saved: true }))?.kind, "blocked");
  });

  it("gives exactly one action per domain, whatever the mix (property)", () => {
    const strategies = ["LiveMigrate", "LiveMigrateIfPossible", "Restart", "None"] as const;
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            s: fc.constantFrom(...strategies),
            migratable: fc.boolean(),
            state: fc.constantFrom("running", "paused", "absent"),
            phase: fc.constantFrom("Running", "Stopped", "Starting", "Failed"),
            failures: fc.integer({ min: 0, max: 5 }),
          }),
          { maxLength: 30 },
        ),
        (xs) => {
          const ds = xs.map((x, i) =>
            dom({ key: `ns/d${i}`, evictionStrategy: x.s, migratable: x.migratable, state: x.state, phase: x.phase }),
          );
          const ms = xs.flatMap((x, i) =>
            Array.from({ length: x.failures }, () => ({ domainKey: `ns/d${i}`, phase: "Failed" })),
          );
          const acts = drainActions(ds, ms);
          assert.deepEqual(acts.map((a) => a.domainKey).sort(), ds.map((d) => d.key).sort());
          for (const a of acts) {
            const d = ds.find((x) => x.key === a.domainKey);
            if (a.kind === "migrate") assert.ok(d?.migratable && d.evictionStrategy.startsWith("LiveMigrate"));
            if (a.kind === "evict") assert.ok(d?.evictionStrategy !== "None" && d?.evictionStrategy !== "LiveMigrate");
          }
        },
      ),
    );
  });
});

describe("maintenance admission", () => {
  const hosts = ["a", "b", "c"].map((name) => ({ name, ready: true, memoryMiB: 4096, cpus: 4 }));
  it("admits in order while the rest of the cluster holds the domains, keeping those already draining", () => {
    const r = admitMaintenances(
      [
        { name: "late", host: "b", createdMs: 2, admitted: false },
        { name: "early", host: "a", createdMs: 1, admitted: false },
      ],
      hosts,
      { memoryMiB: 5000, vcpus: 4 },
    );
    assert.deepEqual(r.get("early"), { admitted: true });
    assert.equal(r.get("late")?.admitted, false);
    const kept = admitMaintenances(
      [
        { name: "late", host: "b", createdMs: 2, admitted: true },
        { name: "early", host: "a", createdMs: 1, admitted: false },
      ],
      hosts,
      { memoryMiB: 5000, vcpus: 4 },
    );
    assert.deepEqual(kept.get("late"), { admitted: true }, "a drain under way is not stopped");
    assert.equal(kept.get("early")?.admitted, false);
    assert.equal(
      admitMaintenances([{ name: "x", host: "a", createdMs: 0, admitted: false }], hosts, {
        memoryMiB: 1,
        vcpus: 33,
      }).get("x")?.admitted,
      false,
      "vCPUs count too (4 per CPU)",
    );
  });
});

describe("drain ETA", () => {
  it("applies the measured seconds per MiB to what is left, over the parallel slots", () => {
    assert.equal(etaSeconds([], 1000, 2), undefined);
    assert.equal(etaSeconds([{ memoryMiB: 1024, seconds: 8 }], 2048, 2), 8);
    assert.equal(
      etaSeconds(
        [
          { memoryMiB: 1024, seconds: 8 },
          { memoryMiB: 512, seconds: 8 },
        ],
        1024,
        1,
      ),
      12,
    );
  });
});
