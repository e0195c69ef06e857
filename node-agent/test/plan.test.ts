// The agent's decisions for every runStrategy, powerState and observed state.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { XenDomainSpec, XenDomainStatus } from "@kubexen/crds";
import type { DomainInfo } from "@kubexen/hypervisor";
import { plan, restartBackoffMs, savedImagePath, wantsRunning } from "../src/plan.ts";

const spec = (o: Partial<XenDomainSpec> = {}): XenDomainSpec => ({
  type: "pvh",
  vcpus: 2,
  maxVcpus: 4,
  memory: "512Mi",
  maxMemory: "1Gi",
  boot: { kernel: "/k" },
  priority: 0,
  runStrategy: "Always",
  powerState: "Running",
  evictionStrategy: "LiveMigrate",
  terminationGracePeriodSeconds: 60,
  ...o,
});
const dom = (o: Partial<DomainInfo> = {}): DomainInfo => ({
  uuid: "u",
  name: "n",
  domid: 5,
  state: "running",
  memoryMiB: 512,
  vcpus: 2,
  cpuTimeSeconds: 1,
  ...o,
});
const now = 1_000_000;
const base = { deleting: false, migrating: false, nowMs: now, saveDir: "/var/lib/kubexen/save" };
const UUID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const IMAGE = `/var/lib/kubexen/save/${UUID}.save`;
const st = (o: Partial<XenDomainStatus> = {}): XenDomainStatus => ({ uuid: UUID, ...o });

describe("plan", () => {
  it("starts a new domain, paused when asked", () => {
    assert.deepEqual(plan({ ...base, spec: spec(), status: st(), observed: undefined }).action, {
      kind: "create",
      paused: false,
    });
    assert.deepEqual(
      plan({ ...base, spec: spec({ powerState: "Paused" }), status: st(), observed: undefined }).action,
      { kind: "create", paused: true },
    );
  });

  it("leaves a running domain alone when it is as desired", () => {
    const p = plan({ ...base, spec: spec(), status: st({ state: "running" }), observed: dom() });
    assert.equal(p.action.kind, "none");
    assert.equal(p.phase, "Running");
  });

  it("does nothing while a migration owns the domain", () => {
    for (const observed of [undefined, dom(), dom({ state: "crashed" })]) {
      assert.equal(plan({ ...base, migrating: true, spec: spec(), status: st(), observed }).action.kind, "none");
    }
    assert.equal(
      plan({ ...base, spec: spec(), status: st(), observed: dom({ migration: "incoming", state: "paused" }) }).action
        .kind,
      "none",
    );
  });

  it("stops for Halted, gracefully, and reports Stopped once gone", () => {
    assert.deepEqual(
      plan({ ...base, spec: spec({ runStrategy: "Halted" }), status: st({ state: "running" }), observed: dom() })
        .action,
      { kind: "shutdown", graceMs: 60_000 },
    );
    assert.equal(
      plan({
        ...base,
        spec: spec({ runStrategy: "Halted" }),
        status: st({ phase: "Stopping", state: "running" }),
        observed: undefined,
      }).phase,
      "Stopped",
    );
  });

  it("pauses, unpauses, saves and restores by powerState", () => {
    assert.equal(
      plan({ ...base, spec: spec({ powerState: "Paused" }), status: st(), observed: dom() }).action.kind,
      "pause",
    );
    assert.equal(
      plan({ ...base, spec: spec(), status: st(), observed: dom({ state: "paused" }) }).action.kind,
      "unpause",
    );
    assert.deepEqual(plan({ ...base, spec: spec({ powerState: "Saved" }), status: st(), observed: dom() }).action, {
      kind: "save",
      path: IMAGE,
    });
    const saved = st({ phase: "Saved", savedImage: IMAGE, state: "absent" });
    assert.equal(
      plan({ ...base, spec: spec({ powerState: "Saved" }), status: saved, observed: undefined }).phase,
      "Saved",
    );
    assert.deepEqual(plan({ ...base, spec: spec(), status: saved, observed: undefined }).action, {
      kind: "restore",
      path: IMAGE,
      paused: false,
    });
  });

  it("restores only from its own save directory, whatever status.savedImage says", () => {
    for (const savedImage of ["/etc/shadow", "/var/lib/kubexen/save/../../../etc/shadow", "relative.save", IMAGE]) {
      const status = st({ phase: "Saved", savedImage, state: "absent" });
      for (const powerState of ["Running", "Paused"] as const)
        assert.deepEqual(plan({ ...base, spec: spec({ powerState }), status, observed: undefined }).action, {
          kind: "restore",
          path: IMAGE,
          paused: powerState === "Paused",
        });
    }
    assert.equal(savedImagePath("/srv/save", UUID), `/srv/save/${UUID}.save`);
  });

  it("neither saves nor restores a domain whose status.uuid is not a UUID", () => {
    for (const uuid of ["u", "../../etc/shadow", `${UUID}/../../x`, `${UUID.toUpperCase()}`, `${UUID}\n`, ""]) {
      assert.equal(savedImagePath("/var/lib/kubexen/save", uuid), undefined, uuid);
      const saving = plan({ ...base, spec: spec({ powerState: "Saved" }), status: st({ uuid }), observed: dom() });
      assert.equal(saving.action.kind, "none", uuid);
      assert.equal(saving.phase, "Failed");
      const restoring = plan({
        ...base,
        spec: spec(),
        status: st({ uuid, savedImage: "/etc/shadow", state: "absent" }),
        observed: undefined,
      });
      assert.equal(restoring.action.kind, "none", uuid);
      assert.equal(restoring.phase, "Failed");
    }
  });

  it("balloons memory and changes vCPUs live within the maxima", () => {
    assert.deepEqual(plan({ ...base, spec: spec({ memory: "768Mi" }), status: st(), observed: dom() }).action, {
      kind: "setMemory",
      mib: 768,
    });
    assert.deepEqual(plan({ ...base, spec: spec({ vcpus: 3 }), status: st(), observed: dom() }).action, {
      kind: "setVcpus",
      vcpus: 3,
    });
  });

  it("destroys a crashed guest and schedules its restart with a growing backoff for Always and RerunOnFailure", () => {
    for (const runStrategy of ["Always", "RerunOnFailure"] as const) {
      const p = plan({
        ...base,
        spec: spec({ runStrategy }),
        status: st({ restartCount: 2 }),
        observed: dom({ state: "crashed" }),
      });
      assert.deepEqual(p.action, { kind: "destroy", reason: "crashed" });
      assert.equal(p.phase, "CrashLoopBackOff");
      assert.equal(p.statusPatch.restartCount, 3);
      assert.equal(p.statusPatch.nextRestartTime, new Date(now + 40_000).toISOString());
    }
    const once = plan({
      ...base,
      spec: spec({ runStrategy: "Once" }),
      status: st({ startTime: "x" }),
      observed: dom({ state: "crashed" }),
    });
    assert.equal(once.phase, "Failed");
    assert.equal(once.statusPatch.restartCount, undefined);
  });

  it("waits out the backoff, then starts again", () => {
    const s = st({
      restartCount: 1,
      nextRestartTime: new Date(now + 5000).toISOString(),
      phase: "CrashLoopBackOff",
      state: "absent",
    });
    assert.deepEqual(plan({ ...base, spec: spec(), status: s, observed: undefined }).action, {
      kind: "wait",
      untilMs: now + 5000,
    });
    assert.deepEqual(plan({ ...base, nowMs: now + 5001, spec: spec(), status: s, observed: undefined }).action, {
      kind: "create",
      paused: false,
    });
    assert.deepEqual(
      [1, 2, 3, 6, 10].map((n) => restartBackoffMs(n)),
      [10_000, 20_000, 40_000, 300_000, 300_000],
    );
  });

  it("tells a guest power-off apart: Always restarts, RerunOnFailure and Once succeed, Manual stops", () => {
    const ran = st({ state: "running", phase: "Running", startTime: "t" });
    const p = (runStrategy: XenDomainSpec["runStrategy"]) =>
      plan({ ...base, spec: spec({ runStrategy }), status: ran, observed: undefined });
    assert.equal(p("Always").phase, "CrashLoopBackOff");
    assert.equal(p("Always").statusPatch.restartCount, 1);
    assert.equal(p("RerunOnFailure").phase, "Succeeded");
    assert.equal(p("Once").phase, "Succeeded");
    assert.equal(p("Manual").phase, "Stopped");
    assert.equal(wantsRunning(spec({ runStrategy: "RerunOnFailure" }), st({ phase: "Succeeded" })), false);
    assert.equal(wantsRunning(spec({ runStrategy: "Once" }), st({ phase: "Succeeded", startTime: "t" })), false);
    assert.equal(wantsRunning(spec({ runStrategy: "Once" }), st()), true);
  });

  it("stops the domain before its XenDomain goes: shutdown, or destroy when it cannot respond", () => {
    assert.equal(
      plan({ ...base, deleting: true, spec: spec(), status: st(), observed: dom() }).action.kind,
      "shutdown",
    );
    assert.equal(
      plan({ ...base, deleting: true, spec: spec(), status: st(), observed: dom({ state: "paused" }) }).action.kind,
      "destroy",
    );
    const gone = plan({ ...base, deleting: true, spec: spec(), status: st(), observed: undefined });
    assert.equal(gone.action.kind, "none");
    assert.equal(gone.phase, "Terminating");
  });
});
