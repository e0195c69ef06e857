// Maintenance decisions, pure: every evictionStrategy in every state, the
// fallback after failed migrations, capacity admission, and the ETA.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  admitMaintenances,
  type DrainAction,
  type DrainDomain,
  type DrainFacts,
  drainActions,
  drainReport,
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

describe("drain report (drainReport)", () => {
  const NOW = Date.parse("2030-01-01T00:00:00Z");
  const facts = (o: Partial<DrainFacts> = {}): DrainFacts => ({
    host: "xen-1",
    remainingMiB: [],
    actions: [],
    migrations: [],
    restartedDomains: [],
    previous: {},
    nowMs: NOW,
    ...o,
  });
  const blocked = (name: string): DrainAction => ({ kind: "blocked", domainKey: `ns/${name}`, reason: "why" });

  it("reports Drained once the host is empty and no migration is in flight, keeping its first times", () => {
    const r = drainReport(
      facts({
        migrations: [
          { domain: "a", phase: "Succeeded", memoryMiB: 512, seconds: 4 },
          { domain: "a", phase: "Failed", memoryMiB: 512, seconds: Number.NaN },
          { domain: "b", phase: "Succeeded", memoryMiB: 512, seconds: 4 },
        ],
        restartedDomains: [{ namespace: "ns", name: "c" }],
        previous: { total: 3, startTime: "2029-12-31T23:59:00Z" },
      }),
    );
    assert.deepEqual(r, {
      phase: "Drained",
      mode: "Ready",
      status: {
        phase: "Drained",
        message: "xen-1 is empty: 2 migrated, 1 restarted",
        total: 3,
        remaining: 0,
        migrated: 2,
        restarted: 1,
        restartedDomains: [{ namespace: "ns", name: "c" }],
        blocked: 0,
        blockedDomains: [],
        startTime: "2029-12-31T23:59:00Z",
        completionTime: "2030-01-01T00:00:00Z",
        eta: undefined,
      },
      requeueAfterMs: 30_000,
    });
    assert.equal(
      drainReport(facts({ previous: { completionTime: "2029-12-31T23:59:30Z" } })).status.completionTime,
      "2029-12-31T23:59:30Z",
    );
  });

  it("is not settled while a migration it started is in flight, even with the host empty", () => {
    const r = drainReport(facts({ migrations: [{ domain: "a", phase: "Transferring", memoryMiB: 512, seconds: 0 }] }));
    assert.equal(r.phase, "Draining");
    assert.equal(r.mode, "Reconciling");
    assert.equal(r.status.completionTime, undefined);
    assert.equal(r.requeueAfterMs, 2000);
  });

  it("reports Blocked when only blocked domains remain, with each reason", () => {
    const r = drainReport(facts({ remainingMiB: [512, 256], actions: [blocked("x"), blocked("y")] }));
    assert.equal(r.phase, "Blocked");
    assert.equal(r.mode, "Stalled");
    assert.equal(r.status.message, "2 domains cannot be evicted (see blockedDomains)");
    assert.deepEqual(r.status.blockedDomains, [
      { namespace: "ns", name: "x", reason: "why" },
      { namespace: "ns", name: "y", reason: "why" },
    ]);
    assert.equal(r.requeueAfterMs, 10_000);
    assert.equal(r.status.startTime, "2030-01-01T00:00:00Z", "the first report starts the clock");
  });

  it("reports progress with an ETA from the measured migrations", () => {
    const r = drainReport(
      facts({
        remainingMiB: [1024, 1024],
        actions: [blocked("x")],
        migrations: [{ domain: "a", phase: "Succeeded", memoryMiB: 1024, seconds: 8 }],
        policy: { parallelOutboundMigrationsPerHost: 1 },
      }),
    );
    assert.equal(r.phase, "Draining");
    assert.equal(r.status.message, "2 domains left on xen-1 (2048 MiB)");
    assert.equal(r.status.eta, "2030-01-01T00:00:16Z", "16 s: 2048 MiB at 8 s per GiB, one at a time");
    assert.equal(r.status.total, 2);
    assert.equal(drainReport(facts({ remainingMiB: [1024] })).status.eta, undefined, "nothing measured yet");
  });

  it("keeps its counts consistent whatever the mix (property)", () => {
    const phases = ["Pending", "Scheduling", "Transferring", "Succeeded", "Failed", "Aborted"];
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 4096 }), { maxLength: 8 }),
        fc.array(fc.boolean(), { maxLength: 8 }),
        fc.array(fc.record({ domain: fc.constantFrom("a", "b", "c"), phase: fc.constantFrom(...phases) }), {
          maxLength: 8,
        }),
        fc.nat({ max: 10 }),
        fc.nat({ max: 3 }),
        (mem, isBlocked, ms, prevTotal, restarted) => {
          const actions: DrainAction[] = mem.map((_, i) =>
            isBlocked[i] ? blocked(`d${i}`) : { kind: "inProgress", domainKey: `ns/d${i}` },
          );
          const r = drainReport(
            facts({
              remainingMiB: mem,
              actions,
              migrations: ms.map((m) => ({ ...m, memoryMiB: 512, seconds: 2 })),
              restartedDomains: Array.from({ length: restarted }, (_, i) => ({ namespace: "ns", name: `r${i}` })),
              previous: { total: prevTotal },
            }),
          );
          const s = r.status;
          assert.equal(s.remaining, mem.length);
          assert.equal(s.total, Math.max(prevTotal, mem.length));
          assert.ok(s.total >= s.remaining);
          assert.equal(s.blocked, actions.filter((a) => a.kind === "blocked").length);
          assert.equal(s.blockedDomains.length, s.blocked);
          assert.equal(s.restarted, restarted);
          assert.ok(s.migrated <= new Set(ms.map((m) => m.domain)).size);
          const inFlight = ms.some((m) => !["Succeeded", "Failed", "Aborted"].includes(m.phase));
          assert.equal(r.phase === "Drained", mem.length === 0 && !inFlight);
          if (r.phase === "Blocked") assert.ok(s.blocked === s.remaining && s.remaining > 0 && !inFlight);
          assert.equal(r.mode, { Drained: "Ready", Blocked: "Stalled", Draining: "Reconciling" }[r.phase]);
          assert.equal(s.completionTime !== undefined, r.phase === "Drained");
          if (r.phase === "Drained") assert.equal(s.eta, undefined);
        },
      ),
      { numRuns: 300 },
    );
  });
});
