// The informer against a real API server: list and watch, selectors, resync,
// an API server killed and restarted under it, 410 Gone after etcd
// compaction, and a watch that goes silent.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Informer, type InformerEvent, KubeClient, SdkMetrics } from "../src/index.ts";
import {
  frozenProxy,
  KubeConfig,
  metricValue,
  quietLogger,
  startCluster,
  until,
  type Widget,
  widget,
  widgets,
} from "./support.ts";

type Cluster = Awaited<ReturnType<typeof startCluster>>;

function recorder() {
  const events: Array<InformerEvent<Widget>> = [];
  return {
    events,
    handler: (ev: InformerEvent<Widget>) => events.push(ev),
    deletes: (name: string) => events.filter((e) => e.type === "delete" && e.obj.metadata.name === name).length,
  };
}

describe("informer", () => {
  let c: Cluster;
  before(async () => {
    c = await startCluster();
  });
  after(async () => {
    await c?.cp.stop();
  });

  it("lists, then delivers adds, updates and deletes, and keeps a cache", async () => {
    for (let i = 0; i < 5; i++) await c.client.create(widgets, widget(`pre-${i}`, { size: i }));
    const inf = new Informer<Widget>(c.client, widgets, {
      namespace: "sdk-test",
      logger: quietLogger,
      metrics: c.metrics,
    });
    const rec = recorder();
    inf.addHandler(rec.handler);
    inf.start();
    await inf.synced();
    assert.equal(inf.size, 5);
    await c.client.create(widgets, widget("w-new", { size: 1 }));
    await c.client.mergePatch(widgets, "pre-1", "sdk-test", { spec: { size: 100 } });
    await c.client.delete(widgets, "pre-2", "sdk-test");
    await until(
      "events",
      () =>
        rec.deletes("pre-2") === 1 &&
        inf.get("sdk-test/w-new") !== undefined &&
        inf.get("sdk-test/pre-1")?.spec.size === 100,
    );
    assert.equal(inf.get("sdk-test/pre-2"), undefined);
    const types = rec.events.map((e) => `${e.type}:${e.obj.metadata.name}`);
    assert.deepEqual(types.slice(0, 5).sort(), ["add:pre-0", "add:pre-1", "add:pre-2", "add:pre-3", "add:pre-4"]);
    assert.deepEqual(types.slice(5), ["add:w-new", "update:pre-1", "delete:pre-2"]);
    const upd = rec.events[6] as { type: "update"; old: Widget; obj: Widget };
    assert.equal(upd.old.spec.size, 1);
    assert.equal(upd.obj.spec.size, 100);
    // A handler added after sync gets the cache as adds.
    const late = recorder();
    inf.addHandler(late.handler);
    assert.equal(late.events.length, inf.size);
    await inf.stop();
  });

  it("waits for its own writes to show, and not for a write that changed nothing", async () => {
    await c.client.create(widgets, widget("ww", { size: 1 }));
    const inf = new Informer<Widget>(c.client, widgets, {
      namespace: "sdk-test",
      logger: quietLogger,
      metrics: c.metrics,
    });
    inf.start();
    await inf.synced();
    await until("cached", () => inf.get("sdk-test/ww") !== undefined);
    const before = inf.get("sdk-test/ww")?.metadata.resourceVersion;
    // The same content again: the API server keeps the resourceVersion, no event will come.
    const same = await c.client.mergePatch<Widget>(widgets, "ww", "sdk-test", { spec: { size: 1 } });
    assert.equal(same.metadata.resourceVersion, before);
    assert.equal(await inf.waitForWrite("sdk-test/ww", before, same, 0), true, "nothing to wait for");
    assert.equal(await inf.waitForChange("sdk-test/ww", before, 0), false, "waitForChange would wait it out");
    const changed = await c.client.mergePatch<Widget>(widgets, "ww", "sdk-test", { spec: { size: 2 } });
    assert.equal(await inf.waitForWrite("sdk-test/ww", before, changed, 30_000), true);
    assert.equal(inf.get("sdk-test/ww")?.spec.size, 2, "the cache shows the write once waited for");
    await inf.stop();
  });

  it("filters with label and field selectors", async () => {
    await c.client.create(widgets, widget("sel-a", { size: 1, flag: "on" }, "sdk-test", { tier: "web" }));
    await c.client.create(widgets, widget("sel-b", { size: 1, flag: "off" }, "sdk-test", { tier: "web" }));
    await c.client.create(widgets, widget("sel-c", { size: 1, flag: "on" }, "sdk-test", { tier: "db" }));
    const inf = new Informer<Widget>(c.client, widgets, {
      labelSelector: "tier=web",
      fieldSelector: "spec.flag=on",
      logger: quietLogger,
      metrics: c.metrics,
    });
    inf.start();
    await inf.synced();
    assert.deepEqual(inf.keys(), ["sdk-test/sel-a"]);
    // An object that stops matching is delivered as a delete.
    const rec = recorder();
    inf.addHandler(rec.handler);
    await c.client.mergePatch(widgets, "sel-a", "sdk-test", { spec: { flag: "off" } });
    await until("leaves the selection", () => rec.deletes("sel-a") === 1);
    await inf.stop();
  });

  it("re-delivers the cache on resync", async () => {
    const inf = new Informer<Widget>(c.client, widgets, {
      namespace: "sdk-test",
      resyncMs: 200,
      logger: quietLogger,
      metrics: c.metrics,
    });
    const rec = recorder();
    inf.addHandler(rec.handler);
    inf.start();
    await inf.synced();
    await until("two resyncs", () => rec.events.filter((e) => e.type === "update" && e.resync).length >= 2 * inf.size);
    await inf.stop();
  });

  it("recovers when the API server is killed and restarted, seeing every change made meanwhile, each delete once", async () => {
    const metrics = new SdkMetrics();
    const client = new KubeClient(c.kc, { metrics });
    for (let i = 0; i < 10; i++) await c.client.create(widgets, widget(`outage-${i}`, { size: i }));
    const inf = new Informer<Widget>(client, widgets, {
      namespace: "sdk-test",
      logger: quietLogger,
      metrics,
      backoff: { initialMs: 3000, maxMs: 5000, jitter: 0 },
    });
    const rec = recorder();
    inf.addHandler(rec.handler);
    inf.start();
    await inf.synced();
    await c.cp.stopApiServer({ kill: true });
    await c.cp.startApiServer();
    // Changes while the informer is still backing off (3 s), then compaction, so its
    // resourceVersion is gone and it must relist and diff.
    for (let i = 0; i < 5; i++) await c.client.delete(widgets, `outage-${i}`, "sdk-test");
    for (let i = 5; i < 10; i++)
      await c.client.mergePatch(widgets, `outage-${i}`, "sdk-test", { spec: { size: 1000 + i } });
    for (let i = 10; i < 13; i++) await c.client.create(widgets, widget(`outage-${i}`, { size: i }));
    await c.cp.compactEtcd();
    const server = await c.client.listAll<Widget>(widgets, { namespace: "sdk-test" });
    await until(
      "cache equals the server",
      () =>
        inf.size === server.items.length &&
        server.items.every(
          (o) => inf.get(`sdk-test/${o.metadata.name}`)?.metadata.resourceVersion === o.metadata.resourceVersion,
        ),
      30_000,
    );
    for (let i = 0; i < 5; i++) assert.equal(rec.deletes(`outage-${i}`), 1, `delete of outage-${i} delivered once`);
    for (let i = 5; i < 10; i++) assert.equal(inf.get(`sdk-test/outage-${i}`)?.spec.size, 1000 + i);
    assert.ok(await metricValue(metrics, "informer_watch_restarts_total"), "the watch restart was counted");
    assert.ok(await metricValue(metrics, "informer_relists_total", { cause: "gone" }), "410 Gone caused a relist");
    // And it keeps watching afterwards.
    await c.client.delete(widgets, "outage-12", "sdk-test");
    await until("live delete after recovery", () => rec.deletes("outage-12") === 1);
    await inf.stop();
  });

  it("drops managedFields from cached objects unless asked to keep them", async () => {
    await c.client.create(widgets, widget("mf", { size: 1 }));
    const lean = new Informer<Widget>(c.client, widgets, { namespace: "sdk-test", logger: quietLogger });
    const full = new Informer<Widget>(c.client, widgets, {
      namespace: "sdk-test",
      logger: quietLogger,
      keepManagedFields: true,
    });
    for (const inf of [lean, full]) {
      inf.start();
      await inf.synced();
    }
    await c.client.mergePatch(widgets, "mf", "sdk-test", { spec: { size: 2 } });
    await until(
      "both saw the update",
      () => lean.get("sdk-test/mf")?.spec.size === 2 && full.get("sdk-test/mf")?.spec.size === 2,
    );
    assert.equal(lean.get("sdk-test/mf")?.metadata.managedFields, undefined);
    assert.ok(Array.isArray(full.get("sdk-test/mf")?.metadata.managedFields));
    await lean.stop();
    await full.stop();
  });

  it("restarts a watch that goes silent", async () => {
    const proxy = await frozenProxy(c.cp.port);
    const kc = new KubeConfig();
    kc.loadFromString(c.kc.exportConfig().replace(`127.0.0.1:${c.cp.port}`, `127.0.0.1:${proxy.port}`));
    const metrics = new SdkMetrics();
    const inf = new Informer<Widget>(new KubeClient(kc, { metrics }), widgets, {
      namespace: "sdk-test",
      watchTimeoutSeconds: 2,
      inactivityGraceMs: 1000,
      backoff: { initialMs: 100, maxMs: 200 },
      logger: quietLogger,
      metrics,
    });
    inf.start();
    await inf.synced();
    await new Promise((r) => setTimeout(r, 300));
    proxy.freezeAll();
    await c.client.create(widgets, widget("after-freeze", { size: 1 }));
    await until("the change arrives through a new watch", () => inf.get("sdk-test/after-freeze") !== undefined, 15_000);
    assert.ok((await metricValue(metrics, "informer_watch_restarts_total", { cause: "inactive" })) >= 1);
    await inf.stop();
    proxy.close();
  });
});
