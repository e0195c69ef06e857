// The agent's decisions for every runStrategy, powerState and observed state.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DomainPhase, XenDomainSpec, XenDomainStatus } from "@kubexen/crds";
import type { DomainInfo } from "@kubexen/hypervisor";
import fc from "fast-check";
import {
  type Action,
  alive,
  nextLookMs,
  type Plan,
  plan,
  restartBackoffMs,
  savedImagePath,
  settle,
  stalledHold,
  stalledRecheckMs,
  stalls,
  wantsRunning,
} from "../src/plan.ts";

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

describe("around the action: confirming, announcing, holding", () => {
  it("confirms the binding with the API server before starting a domain or reporting its end", () => {
    const start = plan({ ...base, spec: spec(), status: st(), observed: undefined });
    assert.equal(start.confirmBinding, true, "about to start it");
    const ended = plan({
      ...base,
      spec: spec({ runStrategy: "Manual" }),
      status: st({ state: "running", phase: "Running", startTime: "t" }),
      observed: undefined,
    });
    assert.equal(ended.phase, "Stopped");
    assert.equal(ended.confirmBinding, true, "about to report it stopped");
    const reported = plan({
      ...base,
      spec: spec({ runStrategy: "Halted" }),
      status: st({ phase: "Stopped", state: "absent" }),
      observed: undefined,
    });
    assert.equal(reported.confirmBinding, undefined, "nothing to do, nothing new to say");
    assert.equal(
      plan({ ...base, spec: spec(), status: st(), observed: dom() }).confirmBinding,
      undefined,
      "it runs here",
    );
  });

  it("announces only the long actions", () => {
    const halted = plan({ ...base, spec: spec({ runStrategy: "Halted" }), status: st(), observed: dom() });
    assert.equal(halted.announce, true);
    assert.equal(plan({ ...base, spec: spec({ powerState: "Saved" }), status: st(), observed: dom() }).announce, true);
    assert.equal(plan({ ...base, spec: spec(), status: st(), observed: undefined }).announce, undefined);
    assert.equal(
      plan({ ...base, spec: spec({ powerState: "Paused" }), status: st(), observed: dom() }).announce,
      undefined,
    );
  });

  it("holds a domain stalled for its current spec until the spec changes, or memory frees up", () => {
    const stalled = (reason: string, observedGeneration = 3): XenDomainStatus =>
      st({
        observedGeneration,
        conditions: [{ type: "Stalled", status: "True", reason, message: "m", lastTransitionTime: "t" }],
      });
    assert.deepEqual(stalledHold(stalled("InvalidConfig"), 3, undefined), { recheckMs: undefined });
    assert.deepEqual(stalledHold(stalled("InsufficientMemory"), 3, undefined), { recheckMs: 30_000 });
    assert.equal(stalledHold(stalled("InvalidConfig"), 4, undefined), undefined, "a new spec is tried");
    assert.equal(stalledHold(stalled("InvalidConfig"), 3, dom()), undefined, "running here: reconciled");
    assert.equal(stalledHold(st({ observedGeneration: 3 }), 3, undefined), undefined);
    for (const code of [
      "InvalidConfig",
      "MissingFile",
      "Unsupported",
      "AlreadyExists",
      "InsufficientMemory",
      "NotMigratable",
    ])
      assert.ok(stalls(code), code);
    for (const code of ["Timeout", "Busy", "Internal", "NotFound"]) assert.ok(!stalls(code), code);
    assert.equal(stalledRecheckMs("InsufficientMemory"), 30_000);
    assert.equal(stalledRecheckMs("InvalidConfig"), undefined);
  });
});

describe("settling after the action", () => {
  const T0 = Date.parse("2030-01-01T00:00:00Z");
  const input = {
    after: undefined as DomainInfo | undefined,
    deleting: false,
    restartCount: 0,
    host: "xen-1",
    nowMs: T0,
  };
  const p = (action: Action, o: Partial<Plan> = {}): Plan => ({
    action,
    phase: "Starting",
    statusPatch: {},
    reason: "r",
    ...o,
  });

  it("reports a started domain Ready at once, with its start time, and a restart's time", () => {
    const o = settle(p({ kind: "create", paused: false }), { ...input, after: dom({ domid: 7 }) });
    assert.deepEqual(o, {
      phase: "Running",
      statusPatch: { startTime: "2030-01-01T00:00:00Z", nextRestartTime: undefined },
      mode: "Ready",
      event: { type: "Normal", reason: "Started", action: "Start", message: "domid 7 on xen-1" },
    });
    const restored = settle(p({ kind: "restore", path: IMAGE, paused: true }), {
      ...input,
      restartCount: 2,
      after: dom({ state: "paused" }),
    });
    assert.equal(restored.phase, "Paused");
    assert.equal(restored.mode, "Ready");
    assert.equal(restored.statusPatch.lastRestartTime, "2030-01-01T00:00:00Z");
    assert.ok(
      "savedImage" in restored.statusPatch && restored.statusPatch.savedImage === undefined,
      "the image is used up",
    );
    assert.equal(restored.event?.reason, "Restored");
    assert.equal(settle(p({ kind: "create", paused: false }), input).mode, "Reconciling", "not seen running yet");
  });

  it("reports saves, stops, crashes, pauses and the rest", () => {
    const saved = settle(p({ kind: "save", path: IMAGE }, { phase: "Saving" }), input);
    assert.equal(saved.phase, "Saved");
    assert.equal(saved.statusPatch.savedImage, IMAGE);
    assert.equal(saved.mode, "Reconciling");
    assert.equal(settle(p({ kind: "shutdown", graceMs: 1 }), input).phase, "Stopped");
    assert.equal(settle(p({ kind: "shutdown", graceMs: 1 }), { ...input, deleting: true }).phase, "Terminating");
    const crashed = settle(
      p(
        { kind: "destroy", reason: "crashed" },
        { phase: "CrashLoopBackOff", statusPatch: { restartCount: 3, nextRestartTime: "2030-01-01T00:00:40Z" } },
      ),
      input,
    );
    assert.equal(crashed.phase, "CrashLoopBackOff");
    assert.equal(crashed.event?.message, "the guest crashed on xen-1; restart #3 at 2030-01-01T00:00:40Z");
    assert.equal(
      settle(p({ kind: "destroy", reason: "crashed" }, { phase: "Failed" }), input).event?.message,
      "the guest crashed on xen-1; restart #- not planned",
    );
    assert.equal(settle(p({ kind: "destroy", reason: "deleting" }), input).event, undefined);
    assert.equal(settle(p({ kind: "pause" }, { phase: "Running" }), input).phase, "Paused");
    assert.equal(settle(p({ kind: "unpause" }, { phase: "Paused" }), input).phase, "Running");
    assert.deepEqual(settle(p({ kind: "none" }, { phase: "Running" }), { ...input, after: dom() }), {
      phase: "Running",
      statusPatch: {},
      mode: "Ready",
    });
    assert.equal(settle(p({ kind: "setMemory", mib: 1 }, { phase: "Running" }), input).mode, "Reconciling");
  });

  it("looks again at the backoff's end, right after an action, else at the resync", () => {
    const o = { resyncMs: 60_000, cpuReportIntervalMs: 30_000 };
    assert.equal(nextLookMs({ kind: "wait", untilMs: T0 + 5000 }, undefined, T0, o), 5000);
    assert.equal(nextLookMs({ kind: "wait", untilMs: T0 }, undefined, T0, o), 100, "never a busy loop");
    assert.equal(nextLookMs({ kind: "create", paused: false }, dom(), T0, o), 10);
    assert.equal(nextLookMs({ kind: "none" }, dom(), T0, o), 30_000, "a running domain's CPU time is reported");
    assert.equal(nextLookMs({ kind: "none" }, undefined, T0, o), 60_000);
    assert.equal(nextLookMs({ kind: "none" }, dom(), T0, { resyncMs: 60_000 }), 60_000);
  });

  it("always settles to a consistent report, whatever the plan and the outcome (property)", () => {
    const states = ["running", "blocked", "paused", "shutdown", "crashed"] as const;
    const actions: Action[] = [
      { kind: "none" },
      { kind: "create", paused: false },
      { kind: "create", paused: true },
      { kind: "restore", path: IMAGE, paused: false },
      { kind: "shutdown", graceMs: 1000 },
      { kind: "destroy", reason: "crashed" },
      { kind: "destroy", reason: "deleting" },
      { kind: "pause" },
      { kind: "unpause" },
      { kind: "save", path: IMAGE },
      { kind: "setMemory", mib: 512 },
      { kind: "setVcpus", vcpus: 2 },
      { kind: "wait", untilMs: T0 + 1000 },
    ];
    const phases: DomainPhase[] = ["Starting", "Running", "Paused", "Stopping", "CrashLoopBackOff", "Terminating"];
    fc.assert(
      fc.property(
        fc.constantFrom(...actions),
        fc.constantFrom(...phases),
        fc.option(fc.constantFrom(...states), { nil: undefined }),
        fc.boolean(),
        fc.nat({ max: 5 }),
        (action, phase, afterState, deleting, restartCount) => {
          const after = afterState ? dom({ state: afterState }) : undefined;
          const o = settle(p(action, { phase }), { ...input, after, deleting, restartCount });
          const starts = action.kind === "create" || action.kind === "restore";
          if (starts) {
            assert.equal(o.phase, afterState === "paused" ? "Paused" : "Running");
            assert.equal(o.statusPatch.startTime, "2030-01-01T00:00:00Z");
            assert.equal(o.statusPatch.lastRestartTime !== undefined, restartCount > 0);
            assert.equal(o.mode, alive(afterState) ? "Ready" : "Reconciling");
          } else {
            assert.equal(o.statusPatch.startTime, undefined, "only a start sets the start time");
            assert.equal(o.mode, action.kind === "none" || action.kind === "wait" ? "Ready" : "Reconciling");
          }
          if (["none", "wait", "setMemory", "setVcpus"].includes(action.kind) || action.kind === "destroy")
            assert.equal(o.phase, phase, "the plan's phase stands");
          if (action.kind === "shutdown") assert.equal(o.phase, deleting ? "Terminating" : "Stopped");
          assert.equal(
            o.event !== undefined,
            starts ||
              ["save", "shutdown"].includes(action.kind) ||
              (action.kind === "destroy" && action.reason === "crashed"),
          );
          const look = nextLookMs(action, after, T0, { resyncMs: 60_000 });
          assert.ok(look >= 10 && look <= 60_000);
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe("plan's extra outputs (property)", () => {
  it("confirms exactly when absent here with something to do or say, and announces exactly the long actions", () => {
    const states = ["running", "blocked", "paused", "shutdown", "crashed"] as const;
    const phases: DomainPhase[] = [
      "Pending",
      "Starting",
      "Running",
      "Stopped",
      "Succeeded",
      "Failed",
      "CrashLoopBackOff",
      "Saved",
    ];
    fc.assert(
      fc.property(
        fc.constantFrom("Always", "RerunOnFailure", "Once", "Manual", "Halted" as const),
        fc.constantFrom("Running", "Paused", "Saved" as const),
        fc.option(fc.constantFrom(...states), { nil: undefined }),
        fc.option(fc.constantFrom(...phases), { nil: undefined }),
        fc.constantFrom("running", "absent", undefined),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        (runStrategy, powerState, observedState, phase, state, deleting, migrating, saved) => {
          const status = st({
            phase,
            state,
            ...(saved ? { savedImage: IMAGE } : {}),
            ...(phase ? { startTime: "t" } : {}),
          });
          const observed = observedState ? dom({ state: observedState }) : undefined;
          const r = plan({ ...base, deleting, migrating, spec: spec({ runStrategy, powerState }), status, observed });
          const eager = !observed && (r.action.kind !== "none" || r.phase !== phase);
          assert.equal(r.confirmBinding === true, eager);
          assert.equal(r.announce === true, r.action.kind === "shutdown" || r.action.kind === "save");
          if (r.confirmBinding !== true) assert.equal(r.confirmBinding, undefined);
          if (r.announce !== true) assert.equal(r.announce, undefined);
        },
      ),
      { numRuns: 500 },
    );
  });
});
