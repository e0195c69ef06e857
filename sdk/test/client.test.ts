// The REST client's writes against a real API server: conflicts retried,
// server-side apply by two field managers that do not fight, finalizers that
// never resurrect an object, events aggregated and rate-limited, one
// connection for many requests, and requests the server asks to repeat.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  ApiError,
  addFinalizer,
  EventRecorder,
  KubeClient,
  markReady,
  removeFinalizer,
  retryOnConflict,
  SdkMetrics,
  setCondition,
} from "../src/index.ts";
import { frozenProxy, KubeConfig, quietLogger, startCluster, type Widget, widget, widgets } from "./support.ts";

type Cluster = Awaited<ReturnType<typeof startCluster>>;

/** The Events in a namespace, with the fields the recorder's tests read. */
const eventsIn = (c: Cluster, namespace: string) =>
  c.client.list<{
    metadata: { name: string };
    reason: string;
    series?: { count: number };
    regarding: { name: string };
  }>({ group: "events.k8s.io", version: "v1", plural: "events", kind: "Event", namespaced: true }, { namespace });

describe("client writes", () => {
  let c: Cluster;
  before(async () => {
    c = await startCluster();
  });
  after(async () => {
    await c?.cp.stop();
  });

  it("retries update conflicts so concurrent read-modify-write loses nothing", async () => {
    await c.client.create(widgets, widget("counter", { size: 1, counter: 0 }));
    let conflicts = 0;
    const bump = () =>
      retryOnConflict(async () => {
        const w = await c.client.get<Widget>(widgets, "counter", "sdk-test");
        w.spec.counter = (w.spec.counter ?? 0) + 1;
        try {
          return await c.client.replace(widgets, w);
        } catch (e) {
          if (e instanceof ApiError && e.status === 409) conflicts++;
          throw e;
        }
      }, 50);
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 10; i++) await bump();
      }),
    );
    const w = await c.client.get<Widget>(widgets, "counter", "sdk-test");
    assert.equal(w.spec.counter, 40);
    assert.ok(conflicts > 0, "the test raced (some conflicts happened)");
  });

  it("lets two field managers apply status side by side without fighting", async () => {
    await c.client.create(widgets, widget("shared", { size: 1 }));
    const apply = (manager: string, status: Widget["status"]) =>
      c.client.applyStatus<Widget>(widgets, { ...widget("shared", { size: 1 }), spec: undefined, status }, manager);
    for (let round = 0; round < 3; round++) {
      await apply("agent", { a: `a${round}`, conditions: markReady([], 1, "Up", `round ${round}`) });
      await apply("operator", {
        b: `b${round}`,
        conditions: setCondition([], { type: "Scheduled", status: "True", reason: "Bound", message: `r${round}` }),
      });
    }
    const w = await c.client.get<Widget>(widgets, "shared", "sdk-test");
    assert.equal(w.status?.a, "a2");
    assert.equal(w.status?.b, "b2");
    assert.deepEqual(w.status?.conditions?.map((x) => x.type).sort(), ["Ready", "Scheduled"]);
    // A manager that drops a field it owned removes it; the other's stay.
    await apply("agent", { conditions: markReady([], 1, "Up", "final") });
    const w2 = await c.client.get<Widget>(widgets, "shared", "sdk-test");
    assert.equal(w2.status?.a, undefined);
    assert.equal(w2.status?.b, "b2");
    assert.deepEqual(w2.status?.conditions?.map((x) => x.type).sort(), ["Ready", "Scheduled"]);
  });

  it("adds and removes finalizers without touching others, and never recreates a deleted object", async () => {
    await c.client.create(widgets, {
      ...widget("fin", { size: 1 }),
      metadata: { name: "fin", namespace: "sdk-test", finalizers: ["other.io/keep"] },
    });
    let w = await c.client.get<Widget>(widgets, "fin", "sdk-test");
    await addFinalizer(c.client, widgets, w, "sdk.kubexen.io/cleanup");
    w = await c.client.get<Widget>(widgets, "fin", "sdk-test");
    assert.deepEqual(w.metadata.finalizers, ["other.io/keep", "sdk.kubexen.io/cleanup"]);
    await removeFinalizer(c.client, widgets, w, "sdk.kubexen.io/cleanup");
    w = await c.client.get<Widget>(widgets, "fin", "sdk-test");
    assert.deepEqual(w.metadata.finalizers, ["other.io/keep"]);
    // A stale view (finalizers changed meanwhile) is refused, not applied blindly.
    await c.client.mergePatch(widgets, "fin", "sdk-test", {
      metadata: { finalizers: ["third.io/x", "other.io/keep"] },
    });
    await assert.rejects(removeFinalizer(c.client, widgets, w, "other.io/keep"), (e: ApiError) => e.status === 422);
    // Gone objects stay gone.
    await c.client.mergePatch(widgets, "fin", "sdk-test", { metadata: { finalizers: null } });
    await c.client.delete(widgets, "fin", "sdk-test");
    await assert.rejects(
      addFinalizer(c.client, widgets, w, "sdk.kubexen.io/cleanup"),
      (e: ApiError) => e.status === 404,
    );
    assert.equal(await c.client.getOrUndefined(widgets, "fin", "sdk-test"), undefined);
  });

  it("aggregates repeated events into a series and rate-limits per object", async () => {
    const target = await c.client.create(widgets, widget("noisy", { size: 1 }));
    const rec = new EventRecorder(c.client, {
      controller: "sdk.kubexen.io/test",
      burst: 5,
      logger: quietLogger,
      metrics: c.metrics,
    });
    for (let i = 0; i < 4; i++) await rec.record(target, "Warning", "CrashLoop", "Restart", "guest crashed");
    for (let i = 0; i < 10; i++) await rec.record(target, "Normal", "Tick", "Tick", `tick ${i}`);
    const list = await eventsIn(c, "sdk-test");
    const mine = list.items.filter((e) => e.regarding.name === "noisy");
    const crash = mine.filter((e) => e.reason === "CrashLoop");
    assert.equal(crash.length, 1, "one object for the repeated event");
    assert.equal(crash[0]?.series?.count, 4);
    assert.equal(mine.filter((e) => e.reason === "Tick").length, 4, "burst of 5 per object: 1 CrashLoop + 4 Ticks");
  });

  it("remembers a bounded number of objects for aggregation: the least recently seen start a new Event", async () => {
    const objs = await Promise.all(
      ["lru-a", "lru-b", "lru-c"].map((n) => c.client.create(widgets, widget(n, { size: 1 }))),
    );
    const rec = new EventRecorder(c.client, {
      controller: "sdk.kubexen.io/test",
      maxTracked: 2,
      logger: quietLogger,
      metrics: c.metrics,
    });
    const [a, b, cc] = objs as [Widget, Widget, Widget];
    await rec.record(a, "Normal", "Seen", "Look", "same note");
    await rec.record(a, "Normal", "Seen", "Look", "same note");
    await rec.record(b, "Normal", "Seen", "Look", "same note");
    await rec.record(cc, "Normal", "Seen", "Look", "same note");
    // a's aggregation was the oldest of three with room for two: this is a new Event, not a series bump.
    await rec.record(a, "Normal", "Seen", "Look", "same note");
    // c's is still remembered.
    await rec.record(cc, "Normal", "Seen", "Look", "same note");
    const list = await eventsIn(c, "sdk-test");
    const of = (n: string) => list.items.filter((e) => e.regarding.name === n && e.reason === "Seen");
    assert.deepEqual(
      of("lru-a")
        .map((e) => e.series?.count ?? 1)
        .sort(),
      [1, 2],
    );
    assert.deepEqual(
      of("lru-c").map((e) => e.series?.count ?? 1),
      [2],
    );
  });

  it("sends many requests over one connection, and opens a new one after a request times out", async () => {
    const proxy = await frozenProxy(c.cp.port);
    const kc = new KubeConfig();
    kc.loadFromString(c.kc.exportConfig().replace(`127.0.0.1:${c.cp.port}`, `127.0.0.1:${proxy.port}`));
    const client = new KubeClient(kc, { timeoutMs: 1500 });
    await client.create(widgets, widget("pooled", { size: 1 }));
    for (let i = 0; i < 10; i++) await client.mergePatch(widgets, "pooled", "sdk-test", { spec: { size: i } });
    await Promise.all(Array.from({ length: 10 }, () => client.get(widgets, "pooled", "sdk-test")));
    assert.equal(proxy.connections(), 1, "every request shares one connection");
    // A half-dead path: the request times out, and the next one must not wait on the same connection.
    proxy.freezeAll();
    await assert.rejects(client.get(widgets, "pooled", "sdk-test"), /aborted|timeout/i);
    const w = await client.get<Widget>(widgets, "pooled", "sdk-test");
    assert.equal(w.spec.size, 9);
    assert.equal(proxy.connections(), 2);
    proxy.close();
  });

  it("sends a request again when the server asks to (Retry-After)", async () => {
    const metrics = new SdkMetrics();
    const client = new KubeClient(c.kc, { metrics });
    const answered = async (code: string) =>
      (await metrics.apiRequests.get()).values.find((v) => v.labels.code === code)?.value ?? 0;
    const rv = Number((await c.client.list(widgets, { namespace: "sdk-test" })).metadata.resourceVersion);
    // A list no older than a resourceVersion the API server has not reached: after 3 s it answers
    // 504 "Too large resource version" with Retry-After: 1. Far enough ahead that the cluster's own
    // writes (leases, events) cannot reach it meanwhile.
    const GAP = 100;
    const ahead = client.list<Widget>(widgets, { namespace: "sdk-test", resourceVersion: String(rv + GAP) });
    let settled = false;
    ahead.then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    const t0 = Date.now();
    while ((await answered("504")) === 0) {
      assert.ok(!settled, "the list was answered before it was asked again");
      assert.ok(Date.now() - t0 < 20_000, "the API server never answered 504");
      await new Promise((r) => setTimeout(r, 50));
    }
    // Now the resourceVersion is reached: the repeated request gets the list.
    for (let i = 1; !settled && i <= 2 * GAP; i++) await c.client.create(widgets, widget(`rv-${i}`, { size: 1 }));
    const list = await ahead;
    assert.ok(Number(list.metadata.resourceVersion) >= rv + GAP);
    assert.ok(
      list.items.some((w) => w.metadata.name === "rv-1"),
      "the answer is from after the repeat: it holds what was written after the 504",
    );
    assert.ok((await answered("504")) >= 1 && (await answered("200")) >= 1);
  });
});
