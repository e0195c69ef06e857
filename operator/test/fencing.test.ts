// When a silent host counts as fenced, and what HA does with each domain on
// it: pure decisions, checked for every case and as properties.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { XenDomain } from "@kubexen/crds";
import fc from "fast-check";
import { fenceVerdict } from "../src/fencing.ts";
import { haDomain } from "../src/ha.ts";
import { haAction } from "../src/ha-plan.ts";
import { DEFAULT_LIMITS, type MigrationView, step } from "../src/migration-plan.ts";

const renew = "2026-01-01T00:00:00Z";
const t0 = Date.parse(renew);
const lease = { renewTime: renew, leaseDurationSeconds: 40 };
const on = { enabled: true, windowSeconds: 70 };

describe("fence verdict", () => {
  it("waits for the lease to expire, then for the fence window and the margin", () => {
    const at = (ms: number, fencing: typeof on | "unreported" = on, outOfService = false) =>
      fenceVerdict({
        lease,
        fencing: fencing === "unreported" ? undefined : fencing,
        outOfService,
        nowMs: t0 + ms,
        marginMs: 15_000,
      });
    assert.equal(at(10_000).reason, "HeartbeatOK");
    assert.equal(at(10_000).recheckMs, 30_000);
    assert.equal(at(50_000).reason, "AwaitingFence");
    assert.equal(at(50_000).recheckMs, 35_000);
    assert.equal(at(84_999).fenced, false);
    assert.equal(at(85_000).fenced, true);
    assert.equal(at(85_000).reason, "FenceWindowPassed");
    assert.equal(at(10 * 3600_000, "unreported").reason, "FencingDisabled");
    assert.equal(at(10 * 3600_000, { enabled: false, windowSeconds: 0 }).fenced, false);
    assert.equal(at(1000, on, true).reason, "OutOfService");
    assert.equal(
      fenceVerdict({ lease: undefined, fencing: on, outOfService: false, nowMs: t0, marginMs: 0 }).reason,
      "NoLease",
    );
  });

  it("never declares a host fenced before renewal + window + margin, unless out of service (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 600 }),
        fc.integer({ min: 0, max: 120_000 }),
        fc.integer({ min: -10_000, max: 2_000_000 }),
        fc.boolean(),
        (windowSeconds, marginMs, dt, enabled) => {
          const v = fenceVerdict({
            lease,
            fencing: { enabled, windowSeconds },
            outOfService: false,
            nowMs: t0 + dt,
            marginMs,
          });
          if (v.fenced) assert.ok(enabled && dt >= windowSeconds * 1000 + marginMs && dt > 40_000);
        },
      ),
    );
  });
});

const xd = (runStrategy: string, status: Record<string, unknown> = {}, deleting = false) =>
  ({
    apiVersion: "kubexen.io/v1alpha1",
    kind: "XenDomain",
    metadata: { name: "d", namespace: "n", ...(deleting ? { deletionTimestamp: renew } : {}) },
    spec: { runStrategy },
    status: { host: "h", uuid: "u", phase: "Running", state: "running", ...status },
  }) as unknown as XenDomain;

describe("HA action per domain on a fenced host", () => {
  it("restarts Always and RerunOnFailure, marks Once and Manual failed, leaves the rest", () => {
    assert.equal(haAction(haDomain(xd("Always")), false).kind, "restart");
    assert.equal(haAction(haDomain(xd("RerunOnFailure")), false).kind, "restart");
    assert.equal(haAction(haDomain(xd("RerunOnFailure", { phase: "Succeeded", state: "absent" })), false).kind, "none");
    assert.equal(haAction(haDomain(xd("RerunOnFailure", { phase: "Succeeded" })), false).kind, "none");
    assert.equal(haAction(haDomain(xd("Once")), false).kind, "markFailed");
    assert.equal(haAction(haDomain(xd("Manual")), false).kind, "markFailed");
    assert.equal(haAction(haDomain(xd("Halted")), false).kind, "none");
    assert.equal(haAction(haDomain(xd("Always")), true).kind, "none", "a migration under way settles first");
    assert.equal(haAction(haDomain(xd("Always", {}, true)), false).kind, "none", "deletion is the finalizer's");
    assert.equal(
      haAction(haDomain(xd("Always", { phase: "CrashLoopBackOff", state: "absent" })), false).kind,
      "restart",
    );
    assert.equal(haAction(haDomain(xd("Always", { host: undefined })), false).kind, "none", "already released");
  });
});

describe("migrations with a fenced host", () => {
  const mv = (o: Partial<MigrationView>): MigrationView => ({
    key: "m",
    domain: "ns/d",
    phase: "Transferring",
    priority: 0,
    createdMs: 0,
    startedMs: 0,
    sourceHost: "a",
    targetHost: "b",
    ...o,
  });
  const T = { status: "True" as const, reason: "Ok", message: "" };
  const F = (reason: string) => ({ status: "False" as const, reason, message: "x" });
  const k = (o: Partial<MigrationView>) => step(mv(o), 1000, DEFAULT_LIMITS).kind;

  it("hands over only when the side left standing says the target runs the domain", () => {
    assert.equal(k({ sourceFenced: true }), "wait", "the target's report decides");
    assert.equal(k({ sourceFenced: true, targetRunning: T }), "handover");
    assert.equal(k({ sourceFenced: true, targetRunning: F("ReceiveFailed") }), "fail");
    assert.equal(k({ sourceFenced: true, targetFenced: true }), "fail");
    assert.equal(k({ targetFenced: true }), "fail", "the domain keeps running on the source");
    assert.equal(k({ targetFenced: true, sourceDone: T }), "handover", "it left the source for the target");
    assert.equal(k({ targetFenced: true, sourceDone: F("Ambiguous") }), "fail");
    assert.equal(k({ phase: "PreparingTarget", targetFenced: true }), "fail");
    assert.equal(k({ phase: "PreparingTarget", sourceFenced: true }), "fail");
  });
});
