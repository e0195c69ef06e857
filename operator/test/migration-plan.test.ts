// The migration state machine: admission under every limit, and each
// phase's next step, including timeouts and the ambiguous handover.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  type AdmissionFacts,
  admit,
  completionTimeoutSeconds,
  DEFAULT_LIMITS,
  DELETED_BEFORE_TRANSFER,
  DELETED_IN_TRANSFER,
  freshest,
  isActive,
  isStaged,
  isStreaming,
  type MigratingDomain,
  type MigrationView,
  mayStream,
  planAdmission,
  step,
  targetHasInboundRoom,
} from "../src/migration-plan.ts";
import { type DomainRequest, type HostView, type PlacedDomain, unfit } from "../src/placement.ts";

const mv = (key: string, o: Partial<MigrationView> = {}): MigrationView => ({
  key,
  domain: `ns/${key}`,
  phase: "Pending",
  priority: 0,
  createdMs: 0,
  sourceHost: "a",
  ...o,
});
const T = (reason = "Ok", message = "") => ({ status: "True" as const, reason, message });
const F = (reason: string, message = "x") => ({ status: "False" as const, reason, message });

describe("admission", () => {
  it("stages by priority, then age, within the cluster and outbound limits; transfers do not count", () => {
    const all = [
      mv("low", { priority: 0, createdMs: 1, sourceHost: "a" }),
      mv("high", { priority: 10, createdMs: 5, sourceHost: "a" }),
      mv("old", { priority: 0, createdMs: 0, sourceHost: "b" }),
      mv("a3", { priority: 5, createdMs: 2, sourceHost: "a" }),
      mv("busy", { phase: "Transferring", sourceHost: "c", targetHost: "a" }),
    ];
    assert.deepEqual(admit(all, { ...DEFAULT_LIMITS, cluster: 5, outboundPerHost: 2 }), ["high", "a3", "old"]);
    assert.deepEqual(admit(all, { ...DEFAULT_LIMITS, cluster: 2 }), ["high", "a3"]);
    const staged = [...all, mv("ahead", { phase: "PreparingTarget", sourceHost: "a", targetHost: "b" })];
    assert.deepEqual(admit(staged, { ...DEFAULT_LIMITS, cluster: 5, outboundPerHost: 2 }), ["high", "old"]);
    assert.deepEqual(admit(staged, { ...DEFAULT_LIMITS, cluster: 2 }), ["high"]);
  });

  it("lets a staged migration send only when its target is ready and a stream is free", () => {
    const L = { ...DEFAULT_LIMITS, cluster: 5, outboundPerHost: 2 };
    const sending = mv("s1", { phase: "Transferring", sourceHost: "a", targetHost: "b" });
    const ready = (key: string, o: Partial<MigrationView> = {}) =>
      mv(key, { phase: "PreparingTarget", sourceHost: "a", targetHost: "c", targetReady: T(), ...o });
    assert.deepEqual(mayStream([sending, ready("r1"), ready("r2", { createdMs: 1 })], L), ["r1"]);
    assert.deepEqual(
      mayStream([{ ...sending, sourceDone: T() }, ready("r1"), ready("r2", { createdMs: 1 })], L),
      ["r1", "r2"],
      "a source done sending frees its stream",
    );
    assert.deepEqual(mayStream([sending, ready("r1", { targetReady: undefined })], L), [], "not before ready");
    assert.deepEqual(mayStream([sending, ready("r1")], { ...L, cluster: 1 }), [], "the cluster's limit");
  });

  it("never exceeds a limit, staging or sending, whatever the mix (property)", () => {
    const hosts = ["a", "b", "c", "d"];
    const phases = ["Pending", "Scheduling", "PreparingTarget", "Transferring", "Succeeded"] as const;
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            phase: fc.constantFrom(...phases),
            src: fc.constantFrom(...hosts),
            prio: fc.integer({ min: -5, max: 5 }),
            dom: fc.constantFrom("d0", "d1", "d2", "d3", "d4", "d5"),
            flag: fc.boolean(),
          }),
          { maxLength: 40 },
        ),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 3 }),
        (ms, cluster, outbound) => {
          const all = ms.map((m, i) =>
            mv(`m${i}`, {
              domain: m.dom,
              phase: m.phase,
              sourceHost: m.src,
              priority: m.prio,
              createdMs: i,
              // For a PreparingTarget one, whether its target is ready; for a Transferring one, whether its source is done.
              targetReady: m.phase === "PreparingTarget" && m.flag ? T() : undefined,
              sourceDone: m.phase === "Transferring" && m.flag ? T() : undefined,
            }),
          );
          const limits = { ...DEFAULT_LIMITS, cluster, outboundPerHost: outbound };
          const within = (before: MigrationView[], after: MigrationView[], held: (m: MigrationView) => boolean) => {
            assert.ok(after.filter(held).length <= Math.max(cluster, before.filter(held).length));
            for (const h of hosts) {
              const n = (xs: MigrationView[]) => xs.filter((m) => held(m) && m.sourceHost === h).length;
              assert.ok(n(after) <= Math.max(outbound, n(before)));
            }
          };
          const admitted = new Set(admit(all, limits));
          const staged = all.map((m) => (admitted.has(m.key) ? { ...m, phase: "Scheduling" as const } : m));
          within(all, staged, isStaged);
          for (const m of all.filter((x) => admitted.has(x.key))) {
            assert.equal(m.phase, "Pending");
            assert.equal(staged.filter((x) => isActive(x) && x.domain === m.domain).length, 1, "one per domain");
          }
          const sending = new Set(mayStream(all, limits));
          const sent = all.map((m) => (sending.has(m.key) ? { ...m, phase: "Transferring" as const } : m));
          within(all, sent, isStreaming);
          for (const m of all.filter((x) => sending.has(x.key))) {
            assert.equal(m.phase, "PreparingTarget");
            assert.equal(m.targetReady?.status, "True");
          }
          // Work-conserving: a ready one is held back only by a full stream limit.
          if (sending.size === 0)
            for (const m of all.filter((x) => x.phase === "PreparingTarget" && x.targetReady))
              assert.ok(
                all.filter(isStreaming).length >= cluster ||
                  all.filter((x) => isStreaming(x) && x.sourceHost === m.sourceHost).length >= outbound,
              );
        },
      ),
      { numRuns: 400 },
    );
  });

  it("decides from our own write until the watch shows it, not from an older cached state", () => {
    const at = (uid: string, phase?: "Pending" | "Scheduling" | "Transferring" | "Failed") => ({
      metadata: { uid },
      ...(phase ? { status: { phase } } : {}),
    });
    const wrote = at("u1", "Scheduling");
    assert.equal(freshest(at("u1"), wrote), wrote, "the cache still shows it Pending");
    const seen = at("u1", "Scheduling");
    assert.equal(freshest(seen, wrote), seen, "caught up: the cache (with the agents' reports) wins");
    const later = at("u1", "Transferring");
    assert.equal(freshest(later, wrote), later, "moved on since");
    const failed = at("u1", "Failed");
    assert.equal(freshest(at("u1", "Scheduling"), failed), failed, "an end we wrote is not undone");
    const again = at("u2");
    assert.equal(freshest(again, wrote), again, "deleted and created again under the name: a new one");
    assert.equal(freshest(undefined, wrote), undefined, "gone");
    assert.equal(freshest(seen, undefined), seen);
  });

  it("checks a target's inbound room", () => {
    const all = [
      mv("x", { phase: "Transferring", targetHost: "t" }),
      mv("y", { phase: "PreparingTarget", targetHost: "t" }),
      mv("z", { phase: "Succeeded", targetHost: "t" }),
    ];
    assert.equal(targetHasInboundRoom(all, "t", DEFAULT_LIMITS), false);
    assert.equal(targetHasInboundRoom(all, "t", DEFAULT_LIMITS, "y"), true);
    assert.equal(targetHasInboundRoom(all, "u", DEFAULT_LIMITS), true);
  });
});

describe("steps", () => {
  const L = DEFAULT_LIMITS;
  it("moves from PreparingTarget to Transferring only when the target is ready", () => {
    assert.equal(step(mv("m", { phase: "PreparingTarget" }), 0, L).kind, "wait");
    assert.equal(step(mv("m", { phase: "PreparingTarget", targetReady: T() }), 0, L).kind, "transfer");
    const f = step(
      mv("m", { phase: "PreparingTarget", targetHost: "b", targetReady: F("InsufficientMemory", "2048 MiB needed") }),
      0,
      L,
    );
    assert.deepEqual(f, { kind: "fail", reason: "target b cannot receive: 2048 MiB needed" });
  });

  it("hands over only when both agents reported success", () => {
    const t = (o: Partial<MigrationView>) => step(mv("m", { phase: "Transferring", startedMs: 0, ...o }), 1000, L).kind;
    assert.equal(t({ sourceDone: T() }), "wait");
    assert.equal(t({ targetRunning: T() }), "wait");
    assert.equal(t({ sourceDone: T(), targetRunning: T() }), "handover");
    assert.equal(t({ sourceDone: F("SendFailed") }), "fail");
    assert.equal(t({ targetRunning: F("ReceiveFailed") }), "fail");
    assert.equal(t({ sourceDone: F("Ambiguous") }), "wait", "an ambiguous outcome waits for the target's report");
    assert.equal(t({ sourceDone: F("Ambiguous"), targetRunning: T() }), "handover");
    assert.equal(
      t({ sourceDone: F("Ambiguous"), targetRunning: F("ReceiveFailed") }),
      "fail",
      "the target reported it does not run the domain: the source resumes",
    );
    assert.equal(t({ sourceDone: F("Ambiguous"), targetFenced: true }), "fail");
    assert.equal(
      step(mv("m", { phase: "Transferring", startedMs: 0, sourceDone: F("Ambiguous") }), 10_000_000, L).kind,
      "wait",
      "no timeout ends an ambiguous migration: only the target's report or its fencing",
    );
  });

  it("aborts on the completion and the progress timeouts", () => {
    assert.equal(completionTimeoutSeconds(2048, 150), 300);
    assert.equal(completionTimeoutSeconds(128, 150), 150, "at least one GiB's worth");
    const s = (now: number, progressMs?: number) =>
      step(mv("m", { phase: "Transferring", startedMs: 0, memoryMiB: 2048, progressMs }), now, L);
    assert.equal(s(140_000, 100_000).kind, "wait");
    assert.deepEqual(s(151_000), {
      kind: "requestAbort",
      reason: "no progress for 150 s (progress timeout)",
      cause: "Timeout",
    });
    assert.deepEqual(s(301_000, 300_000), {
      kind: "requestAbort",
      reason: "no completion within 300 s (completion timeout)",
      cause: "Timeout",
    });
    // The source's answer ends it: stopped in time (Aborted), or too late (the handover goes ahead).
    const asked = (o: Partial<MigrationView>) =>
      step(mv("m", { phase: "Transferring", startedMs: 0, abortRequested: "why", ...o }), 400_000, L);
    assert.deepEqual(asked({}), { kind: "wait", recheckMs: 1000 });
    assert.deepEqual(asked({ sourceDone: F("SendFailed") }), { kind: "abort", reason: "why" });
    assert.equal(asked({ sourceDone: T(), targetRunning: T() }).kind, "handover");
    assert.equal(asked({ sourceDone: F("Ambiguous") }).kind, "wait");
    // Before any byte was sent, a target that never gets ready is given up on.
    const prep = (now: number) =>
      step(mv("m", { phase: "PreparingTarget", targetHost: "b", preparingMs: 0 }), now, L).kind;
    assert.equal(prep(100_000), "wait");
    assert.equal(prep(151_000), "fail");
  });
});

describe("a deleted migration", () => {
  const L = DEFAULT_LIMITS;
  const reports = fc.constantFrom(undefined, T(), F("SendFailed"), F("Ambiguous"), F("ReceiveFailed"), F("NotHere"));
  const transferring = fc.record({
    sourceDone: reports,
    targetRunning: reports,
    abortRequested: fc.constantFrom(undefined, "why"),
    sourceFenced: fc.boolean(),
    targetFenced: fc.boolean(),
    progressMs: fc.option(fc.integer({ min: 0, max: 1_000_000 }), { nil: undefined }),
  });

  it("ends at once before its transfer, and asks the source to stop during it", () => {
    assert.deepEqual(step(mv("m", { phase: "PreparingTarget", deleting: true, targetReady: T() }), 0, L), {
      kind: "abort",
      reason: DELETED_BEFORE_TRANSFER,
    });
    const t = (o: Partial<MigrationView>) =>
      step(mv("m", { phase: "Transferring", startedMs: 0, deleting: true, ...o }), 1000, L);
    assert.deepEqual(t({}), { kind: "requestAbort", reason: DELETED_IN_TRANSFER, cause: "Deleted" });
    assert.deepEqual(t({ abortRequested: DELETED_IN_TRANSFER }), { kind: "wait", recheckMs: 1000 });
    assert.deepEqual(t({ abortRequested: DELETED_IN_TRANSFER, sourceDone: F("SendFailed") }), {
      kind: "abort",
      reason: DELETED_IN_TRANSFER,
    });
    // Too late to stop: the domain has moved, and the handover is recorded like any other.
    assert.equal(t({ sourceDone: T(), targetRunning: T() }).kind, "handover");
    assert.equal(t({ sourceDone: F("Ambiguous") }).kind, "wait", "only the target's report settles it");
  });

  it("during a transfer, does what it would have done undeleted once the reports decide, and never ends blind (property)", () => {
    fc.assert(
      fc.property(transferring, (o) => {
        const base = mv("m", { phase: "Transferring", startedMs: 0, sourceHost: "a", targetHost: "b", ...o });
        const kept = step(base, 1000, L);
        const deleted = step({ ...base, deleting: true }, 1000, L);
        if (kept.kind === "handover" || kept.kind === "fail" || kept.kind === "abort")
          assert.deepEqual(deleted, kept, "a decided outcome stands");
        else if (o.abortRequested || o.sourceFenced || o.sourceDone?.reason === "Ambiguous")
          // A stop asked once waits for the source's answer; a fenced source or a broken handover
          // waits for the target's, as it would undeleted.
          assert.deepEqual(deleted, kept);
        else
          assert.deepEqual(
            deleted,
            { kind: "requestAbort", reason: DELETED_IN_TRANSFER, cause: "Deleted" },
            "the source is asked to stop; nothing ends before it answers",
          );
      }),
    );
  });

  it("is withdrawn before it was sent, whatever admission would have said", () => {
    for (const phase of ["Pending", "Scheduling"] as const)
      assert.deepEqual(
        planAdmission({
          migration: mv("m", { phase, deleting: true }),
          namespace: "ns",
          domainName: "web",
          domain: undefined,
          all: [],
          limits: L,
          policy: {},
          hosts: [],
          placements: new Map(),
        }),
        { kind: "abort", reason: DELETED_BEFORE_TRANSFER },
      );
  });
});

describe("admission and target choice (planAdmission)", () => {
  const host = (name: string, o: Partial<HostView> = {}): HostView => ({
    name,
    ready: true,
    unschedulable: false,
    inMaintenance: false,
    labels: {},
    cpus: 8,
    memoryMiB: 8192,
    guestTypes: ["pv", "pvh", "hvm"],
    pciAssignable: [],
    ...o,
  });
  const request: DomainRequest = {
    namespace: "ns",
    name: "web",
    labels: {},
    memoryMiB: 1024,
    vcpus: 2,
    pciDevices: [],
    type: "pvh",
    hostSelector: {},
    antiAffinity: [],
  };
  const dom = (o: Partial<MigratingDomain> = {}): MigratingDomain => ({
    host: "a",
    phase: "Running",
    uuid: "u-1",
    memoryMiB: 1024,
    migratable: true,
    request,
    ...o,
  });
  const facts = (o: Partial<AdmissionFacts> = {}, m: Partial<MigrationView> = {}): AdmissionFacts => {
    const migration = mv("m", { domain: "ns/web", ...m });
    return {
      migration,
      namespace: "ns",
      domainName: "web",
      domain: dom(),
      all: [migration],
      limits: DEFAULT_LIMITS,
      policy: {},
      hosts: [host("a"), host("b"), host("c")],
      placements: new Map(),
      ...o,
    };
  };
  const scheduling = (o: Partial<AdmissionFacts> = {}, m: Partial<MigrationView> = {}) =>
    facts(o, { phase: "Scheduling", ...m });

  it("fails fast for a domain that is missing, stopped or not migratable, and waits for one that settles", () => {
    assert.deepEqual(planAdmission(facts({ domain: undefined })), {
      kind: "fail",
      reason: "XenDomain web does not exist in ns",
    });
    for (const phase of ["Pending", "Scheduling", "Starting", "Restoring", "Migrating"] as const)
      assert.deepEqual(planAdmission(facts({ domain: dom({ phase }) })), { kind: "requeue", afterMs: 1000 }, phase);
    assert.deepEqual(planAdmission(facts({ domain: dom({ host: undefined }) })), { kind: "requeue", afterMs: 1000 });
    assert.deepEqual(planAdmission(facts({ domain: dom({ phase: "Stopped" }) })), {
      kind: "fail",
      reason: "XenDomain web is not running (phase Stopped)",
    });
    assert.deepEqual(
      planAdmission(facts({ domain: dom({ migratable: false, notMigratableWhy: "passes through 01:00.0" }) })),
      {
        kind: "fail",
        reason: "XenDomain web cannot live-migrate: passes through 01:00.0",
      },
    );
    assert.deepEqual(planAdmission(facts({ domain: dom({ migratable: false }) })), {
      kind: "fail",
      reason: "XenDomain web cannot live-migrate: not migratable",
    });
  });

  it("stages an admitted one with the most specific settings, and waits while the limits are full", () => {
    assert.deepEqual(planAdmission(facts()), {
      kind: "setPhase",
      phase: "Scheduling",
      fields: { sourceHost: "a", domainUUID: "u-1", memoryMiB: 1024, bandwidthMiBps: 0, autoConverge: false },
    });
    const fields = (o: Partial<AdmissionFacts>, d: Partial<MigratingDomain> = {}) => {
      const a = planAdmission(facts({ ...o, domain: dom(d) }));
      assert.equal(a.kind, "setPhase");
      return a.kind === "setPhase" ? a.fields : {};
    };
    const policy = { bandwidthMiBps: 100, autoConverge: true };
    assert.equal(fields({ policy }).bandwidthMiBps, 100);
    assert.equal(fields({ policy }).autoConverge, true);
    assert.equal(fields({ policy }, { bandwidthMiBps: 50, autoConverge: false }).bandwidthMiBps, 50);
    assert.equal(fields({ policy }, { autoConverge: false }).autoConverge, false);
    assert.equal(fields({ policy, bandwidthMiBps: 10 }, { bandwidthMiBps: 50 }).bandwidthMiBps, 10);
    // The cluster's one slot is held by another staged migration.
    const busy = mv("other", { phase: "Scheduling", domain: "ns/x", sourceHost: "c" });
    const m = mv("m", { domain: "ns/web" });
    assert.deepEqual(planAdmission(facts({ all: [busy, m], limits: { ...DEFAULT_LIMITS, cluster: 1 } })), {
      kind: "requeue",
      afterMs: 2000,
    });
  });

  it("lets placement choose a target other than the source, among hosts with inbound room", () => {
    const a = planAdmission(scheduling({ hosts: [host("a"), host("b", { memoryMiB: 4096 }), host("c")] }));
    assert.deepEqual(a, { kind: "setPhase", phase: "PreparingTarget", fields: { targetHost: "c" } });
    // c is full of incoming migrations: b, though it scores lower.
    const m = mv("m", { phase: "Scheduling", domain: "ns/web" });
    const inbound = [
      mv("i1", { phase: "Transferring", targetHost: "c" }),
      mv("i2", { phase: "Transferring", targetHost: "c" }),
    ];
    assert.deepEqual(
      planAdmission(
        scheduling({ all: [m, ...inbound], hosts: [host("a"), host("b", { memoryMiB: 4096 }), host("c")] }),
      ),
      { kind: "setPhase", phase: "PreparingTarget", fields: { targetHost: "b" } },
    );
    // Only c could take it and c is busy: wait rather than fail.
    assert.deepEqual(
      planAdmission(scheduling({ all: [m, ...inbound], hosts: [host("a"), host("b", { ready: false }), host("c")] })),
      { kind: "requeue", afterMs: 2000 },
    );
    assert.deepEqual(
      planAdmission(
        scheduling({ hosts: [host("a"), host("b", { ready: false }), host("c", { unschedulable: true })] }),
      ),
      {
        kind: "fail",
        reason: "no host can take web: 0/2 hosts available: 1 cordoned, 1 not ready",
      },
    );
    assert.deepEqual(planAdmission(scheduling({ domain: dom({ host: undefined }) })), {
      kind: "fail",
      reason: "XenDomain web went away",
    });
    assert.deepEqual(planAdmission(scheduling({ domain: undefined })), {
      kind: "fail",
      reason: "XenDomain web went away",
    });
  });

  it("checks a requested target", () => {
    const to = (t: string, o: Partial<AdmissionFacts> = {}) => planAdmission(scheduling(o, { requestedTarget: t }));
    assert.deepEqual(to("b"), { kind: "setPhase", phase: "PreparingTarget", fields: { targetHost: "b" } });
    assert.deepEqual(to("z"), { kind: "fail", reason: "target host z does not exist" });
    assert.deepEqual(to("a"), { kind: "fail", reason: "the domain already runs on a" });
    assert.deepEqual(to("b", { hosts: [host("a"), host("b", { memoryMiB: 512 })] }), {
      kind: "fail",
      reason: "migration to b refused: insufficient memory",
    });
    const m = mv("m", { phase: "Scheduling", domain: "ns/web", requestedTarget: "b" });
    const inbound = [
      mv("i1", { phase: "PreparingTarget", targetHost: "b" }),
      mv("i2", { phase: "Transferring", targetHost: "b" }),
    ];
    assert.deepEqual(to("b", { all: [m, ...inbound] }), { kind: "requeue", afterMs: 2000 }, "busy, not refused");
  });

  it("leaves a migration that moved on to the other half of the controller", () => {
    for (const phase of ["PreparingTarget", "Transferring", "Succeeded"] as const)
      assert.deepEqual(planAdmission(facts({}, { phase })), { kind: "requeue", afterMs: 10 });
  });

  it("never picks the source, a host that cannot take the domain, or one without inbound room (property)", () => {
    const names = ["a", "b", "c", "d"];
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            ready: fc.boolean(),
            unschedulable: fc.boolean(),
            memoryMiB: fc.constantFrom(512, 2048, 8192),
            used: fc.constantFrom(0, 1024, 4096),
          }),
          { minLength: names.length, maxLength: names.length },
        ),
        fc.array(
          fc.record({
            target: fc.constantFrom(...names),
            phase: fc.constantFrom("Scheduling", "PreparingTarget", "Transferring", "Failed"),
          }),
          {
            maxLength: 6,
          },
        ),
        fc.option(fc.constantFrom(...names, "zz"), { nil: undefined }),
        fc.integer({ min: 1, max: 3 }),
        (hs, others, requested, inbound) => {
          const hosts = hs.map((h, i) =>
            host(names[i] ?? "", { ready: h.ready, unschedulable: h.unschedulable, memoryMiB: h.memoryMiB }),
          );
          const placements = new Map<string, PlacedDomain[]>(
            hs.map((h, i) => [names[i] ?? "", h.used ? [{ ...request, name: `p${i}`, memoryMiB: h.used }] : []]),
          );
          const m = mv("m", { phase: "Scheduling", domain: "ns/web", requestedTarget: requested });
          const all = [
            m,
            ...others.map((o, i) =>
              mv(`o${i}`, { domain: `ns/o${i}`, phase: o.phase, sourceHost: "x", targetHost: o.target }),
            ),
          ];
          const limits = { ...DEFAULT_LIMITS, inboundPerHost: inbound };
          const a = planAdmission(scheduling({ all, hosts, placements, limits }, { requestedTarget: requested }));
          const room = (t: string) => targetHasInboundRoom(all, t, limits, "m");
          const fits = (t: string) => {
            const h = hosts.find((x) => x.name === t);
            return !!h && !unfit(request, h, placements.get(t) ?? []);
          };
          if (a.kind === "setPhase") {
            assert.equal(a.phase, "PreparingTarget");
            const t = String(a.fields.targetHost);
            assert.notEqual(t, "a");
            assert.ok(fits(t) && room(t));
            if (requested) assert.equal(t, requested);
          } else if (a.kind === "requeue") {
            assert.equal(a.afterMs, 2000);
            // Waiting is only ever for room: some host that would do lacks it.
            assert.ok(names.some((t) => t !== "a" && !room(t)));
          } else {
            // A failure is final: no host but the source fits, whatever room frees later.
            if (requested) assert.ok(requested === "a" || !fits(requested));
            else assert.ok(names.every((t) => t === "a" || !fits(t)));
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it("stages a Pending one only when it is admitted (property)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            phase: fc.constantFrom("Pending", "Scheduling", "PreparingTarget", "Transferring"),
            src: fc.constantFrom("a", "b"),
          }),
          {
            maxLength: 8,
          },
        ),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        (ms, cluster, outbound) => {
          const m = mv("m", { domain: "ns/web" });
          const all = [
            m,
            ...ms.map((o, i) =>
              mv(`o${i}`, { domain: `ns/o${i}`, phase: o.phase, sourceHost: o.src, createdMs: i - 4 }),
            ),
          ];
          const limits = { ...DEFAULT_LIMITS, cluster, outboundPerHost: outbound };
          const a = planAdmission(facts({ all, limits }));
          assert.equal(a.kind === "setPhase", admit(all, limits).includes("m"));
          if (a.kind !== "setPhase") assert.deepEqual(a, { kind: "requeue", afterMs: 2000 });
        },
      ),
      { numRuns: 300 },
    );
  });
});
