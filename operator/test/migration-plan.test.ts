// The migration state machine: admission under every limit, and each
// phase's next step, including timeouts and the ambiguous handover.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  admit,
  completionTimeoutSeconds,
  DEFAULT_LIMITS,
  freshest,
  isActive,
  isStaged,
  isStreaming,
  type MigrationView,
  mayStream,
  step,
  targetHasInboundRoom,
} from "../src/migration-plan.ts";

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
    assert.deepEqual(s(151_000), { kind: "requestAbort", reason: "no progress for 150 s (progress timeout)" });
    assert.deepEqual(s(301_000, 300_000), {
      kind: "requestAbort",
      reason: "no completion within 300 s (completion timeout)",
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
