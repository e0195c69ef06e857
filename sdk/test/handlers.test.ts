// kopf-style handlers on a real API server: create, update with field diffs,
// resume after restart, delete behind a finalizer that fails until it
// succeeds, PermanentError reported as Stalled and an event, timers and
// daemons tied to the object's life; and a graceful manager shutdown.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  Controller,
  EventRecorder,
  type FieldChange,
  Informer,
  type KubeObject,
  Manager,
  PermanentError,
  ResourceHandlers,
  SdkMetrics,
} from "../src/index.ts";
import { metricValue, quietLogger, startCluster, until, type Widget, widget, widgets } from "./support.ts";

type Cluster = Awaited<ReturnType<typeof startCluster>>;

describe("handlers", () => {
  let c: Cluster;
  before(async () => {
    c = await startCluster();
  });
  after(async () => {
    await c?.cp.stop();
  });

  function setup(log: string[], opts: { deleteFailures?: { n: number }; flagPermanent?: boolean } = {}) {
    const metrics = new SdkMetrics();
    const informer = new Informer<Widget>(c.client, widgets, { namespace: "sdk-test", logger: quietLogger, metrics });
    const events = new EventRecorder(c.client, { controller: "sdk.kubexen.io/test", logger: quietLogger, metrics });
    const h = new ResourceHandlers<Widget>({
      name: "widgets",
      client: c.client,
      resource: widgets,
      informer,
      finalizer: "sdk.kubexen.io/cleanup",
      annotation: "sdk.kubexen.io/last-handled-configuration",
      fieldManager: "sdk-test",
      events,
      logger: quietLogger,
      metrics,
    });
    h.onCreate(({ obj }) => {
      log.push(`create:${obj.metadata.name}`);
    });
    h.onUpdate(
      ({ obj, diff }) => {
        log.push(
          `size:${obj.metadata.name}:${(diff as FieldChange[]).map((d) => `${d.op}:${d.path.join(".")}`).join(",")}`,
        );
      },
      { field: "spec.size" },
    );
    h.onUpdate(({ obj }) => {
      log.push(`any:${obj.metadata.name}`);
    });
    h.onResume(({ obj }) => {
      log.push(`resume:${obj.metadata.name}`);
    });
    h.onDelete(({ obj }) => {
      if (opts.flagPermanent && obj.spec.flag === "broken")
        throw new PermanentError("cannot clean up a broken widget", "BrokenWidget");
      if (opts.deleteFailures && opts.deleteFailures.n > 0) {
        opts.deleteFailures.n--;
        throw new Error("cleanup not done yet");
      }
      log.push(`delete:${obj.metadata.name}`);
    });
    return { h, informer, metrics };
  }

  it("runs create once, update handlers with diffs filtered by field, and resume after a restart", async () => {
    const log: string[] = [];
    const first = setup(log);
    first.informer.start();
    await first.informer.synced();
    first.h.start();
    await c.client.create(widgets, widget("h1", { size: 1 }));
    await until("created", () => log.includes("create:h1"));
    await c.client.mergePatch(widgets, "h1", "sdk-test", { spec: { flag: "x" } });
    await until("any update", () => log.includes("any:h1"));
    // Recorded as handled before the next change, or that change's diff would hold both.
    await until("the update recorded as handled", async () =>
      /"flag":"x"/.test(
        (await c.client.get<Widget>(widgets, "h1", "sdk-test")).metadata.annotations?.[
          "sdk.kubexen.io/last-handled-configuration"
        ] ?? "",
      ),
    );
    await c.client.mergePatch(widgets, "h1", "sdk-test", { spec: { size: 2 } });
    await until("size update", () => log.some((l) => l.startsWith("size:h1")));
    assert.ok(log.includes("size:h1:change:spec.size"), log.join(" "));
    // Status changes are not the user's intent: no handler runs.
    const before = log.length;
    await c.client.applyStatus(widgets, { ...widget("h1", { size: 2 }), status: { a: "x" } }, "someone");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(log.length, before);
    assert.equal(log.filter((l) => l === "create:h1").length, 1);
    await first.h.stop();
    await first.informer.stop();

    // A new process: the object is known (annotation), unchanged: resume, not create.
    const log2: string[] = [];
    const second = setup(log2);
    second.informer.start();
    await second.informer.synced();
    second.h.start();
    await until("resumed", () => log2.includes("resume:h1"));
    assert.ok(!log2.includes("create:h1"));
    await second.h.stop();
    await second.informer.stop();
  });

  it("holds a deleted object with a finalizer until the delete handler succeeds", async () => {
    const log: string[] = [];
    const failures = { n: 3 };
    const s = setup(log, { deleteFailures: failures });
    s.informer.start();
    await s.informer.synced();
    s.h.start();
    await c.client.create(widgets, widget("h2", { size: 1 }));
    await until(
      "finalizer added",
      async () =>
        (await c.client.get<Widget>(widgets, "h2", "sdk-test")).metadata.finalizers?.includes(
          "sdk.kubexen.io/cleanup",
        ) ?? false,
    );
    await c.client.delete(widgets, "h2", "sdk-test");
    await until("delete handler succeeded", () => log.includes("delete:h2"), 20_000);
    assert.equal(failures.n, 0, "it failed three times first");
    await until("object gone", async () => (await c.client.getOrUndefined(widgets, "h2", "sdk-test")) === undefined);
    assert.ok((await metricValue(s.metrics, "controller_reconcile_errors_total", { kind: "error" })) >= 3);
    await s.h.stop();
    await s.informer.stop();
  });

  it("reports a PermanentError as a Stalled condition and a Warning event, keeps the object, and recovers when fixed", async () => {
    const log: string[] = [];
    const s = setup(log, { flagPermanent: true });
    s.informer.start();
    await s.informer.synced();
    s.h.start();
    await c.client.create(widgets, widget("h3", { size: 1, flag: "broken" }));
    await until(
      "finalizer",
      async () => (await c.client.get<Widget>(widgets, "h3", "sdk-test")).metadata.finalizers !== undefined,
    );
    await c.client.delete(widgets, "h3", "sdk-test");
    await until("stalled", async () => {
      const w = await c.client.get<Widget>(widgets, "h3", "sdk-test");
      return (
        w.status?.conditions?.some(
          (x) => x.type === "Stalled" && x.status === "True" && /broken widget/.test(x.message),
        ) ?? false
      );
    });
    const evs = await c.client.list<KubeObject & { reason: string; type: string; regarding: { name: string } }>(
      { group: "events.k8s.io", version: "v1", plural: "events", kind: "Event", namespaced: true },
      { namespace: "sdk-test" },
    );
    assert.ok(evs.items.some((e) => e.regarding.name === "h3" && e.reason === "BrokenWidget" && e.type === "Warning"));
    assert.ok(await c.client.getOrUndefined(widgets, "h3", "sdk-test"), "still there");
    // Fixing the cause lets the delete complete.
    await c.client.mergePatch(widgets, "h3", "sdk-test", { spec: { flag: "fixed" } });
    await until(
      "gone after the fix",
      async () => (await c.client.getOrUndefined(widgets, "h3", "sdk-test")) === undefined,
    );
    await s.h.stop();
    await s.informer.stop();
  });

  it("runs timers and daemons while the object exists and stops them when it goes", async () => {
    const metrics = new SdkMetrics();
    const informer = new Informer<Widget>(c.client, widgets, { namespace: "sdk-test", logger: quietLogger, metrics });
    const h = new ResourceHandlers<Widget>({
      name: "tasks",
      client: c.client,
      resource: widgets,
      informer,
      finalizer: "sdk.kubexen.io/tasks",
      fieldManager: "sdk-test",
      logger: quietLogger,
      metrics,
      annotation: "tasks.sdk.kubexen.io/last-handled",
    });
    let ticks = 0;
    let daemonStopped = false;
    let daemonFailures = 0;
    h.timer(100, ({ obj }) => {
      if (obj.metadata.name === "h4") ticks++;
    });
    h.daemon(async ({ get, signal }) => {
      if (get()?.metadata.name !== "h4") return;
      if (daemonFailures++ === 0) throw new Error("first run fails");
      await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
      daemonStopped = true;
    });
    informer.start();
    await informer.synced();
    h.start();
    await c.client.create(widgets, widget("h4", { size: 1 }));
    await until("ticking", () => ticks >= 3);
    await until("daemon restarted after its failure", () => daemonFailures >= 2, 10_000);
    await c.client.delete(widgets, "h4", "sdk-test");
    await until("daemon stopped", () => daemonStopped);
    const t = ticks;
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(ticks, t, "timer stopped");
    await h.stop();
    await informer.stop();
  });

  it("shuts a manager down gracefully: in-flight reconciles finish, no new work starts", async () => {
    const mgr = new Manager({
      kubeConfig: c.kc,
      name: "sdk-shutdown-test",
      handleSignals: false,
      logger: quietLogger,
      healthPort: 0,
    });
    const inf = mgr.informer<Widget>(widgets, { namespace: "sdk-test" });
    const started: string[] = [];
    const finished: string[] = [];
    const ctrl = new Controller({
      name: "slow",
      concurrency: 2,
      logger: quietLogger,
      metrics: mgr.metrics,
      reconcile: async (key) => {
        started.push(key);
        await new Promise((r) => setTimeout(r, 1500));
        finished.push(key);
        return undefined;
      },
    });
    ctrl.watch(inf);
    mgr.add(ctrl);
    for (let i = 0; i < 5; i++) await c.client.create(widgets, widget(`m${i}`, { size: i }));
    await mgr.start();
    try {
      assert.match(await mgr.metrics.registry.metrics(), /workqueue_adds_total\{queue="slow"\}/);
      assert.equal((await fetch(`${mgr.healthAddress}/readyz`)).status, 200);
      await until("two reconciles in flight", () => started.length >= 2);
      await mgr.stop();
      assert.deepEqual([...finished].sort(), [...started].sort(), "every started reconcile finished");
      assert.equal(started.length, 2, "no new reconcile started after stop");
    } finally {
      await mgr.stop();
    }
  });
});
