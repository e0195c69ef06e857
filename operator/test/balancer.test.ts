// The balancer against a real API server and sim hosts whose domains burn
// CPU: Recommend writes a plan and moves nothing; Auto moves domains by live
// migration (reason Balance) within the per-pass and per-host limits, the
// measured imbalance falls, and no domain is moved twice within its cooldown.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { resources, type XenBalancer, type XenDomain, type XenMigration } from "@kubexen/crds";
import {
  type ControlPlane,
  OverlapRecorder,
  type SimFleet,
  startKubexenControlPlane,
  startSimFleet,
  until,
} from "@kubexen/e2e";
import { createLogger, KubeClient, SdkMetrics } from "@kubexen/sdk";
import { Operator } from "../src/index.ts";

const log = createLogger("balancer-test", process.env.LOG_LEVEL ?? "warn");
const NS = "balance";

describe("operator: load balancing", () => {
  let cp: ControlPlane;
  let client: KubeClient;
  let fleet: SimFleet;
  let op: Operator;
  let rec: OverlapRecorder;
  const balancer = () => client.get<XenBalancer>(resources.xenBalancers, "default");
  const balanceMigrations = async () =>
    (await client.listAll<XenMigration>(resources.xenMigrations, { namespace: NS })).items.filter(
      (m) => m.spec.reason === "Balance",
    );
  const cordon = (h: string, unschedulable: boolean) =>
    client.mergePatch(resources.xenHosts, h, undefined, { spec: { unschedulable } });

  before(async () => {
    cp = await startKubexenControlPlane([NS]);
    client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
    fleet = await startSimFleet(
      cp,
      ["b1", "b2", "b3"].map((name) => ({ name, memoryMiB: 2048 + 8192, cpus: 8 })),
      { logger: log, reportIntervalMs: 1000, cpuReportIntervalMs: 1000 },
    );
    rec = new OverlapRecorder(fleet.sims);
    op = new Operator({
      kubeConfig: cp.kubeConfig(),
      migrationCa: fleet.migrationCa,
      leaderElection: false,
      logger: log,
    });
    await op.start();
  });
  after(async () => {
    rec?.stop();
    await op?.stop();
    await fleet?.stop();
    await cp?.stop();
  });

  it("recommends, then moves domains off the hot host within every limit, once each", async () => {
    await until("hosts", async () => (await client.list(resources.xenHosts)).items.length === 3);
    for (const h of ["b2", "b3"]) await cordon(h, true);
    for (let i = 0; i < 8; i++)
      await client.create(resources.xenDomains, {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenDomain",
        metadata: { name: `busy-${i}`, namespace: NS },
        spec: { memory: "512Mi", vcpus: 2, boot: { kernel: "/boot/vmlinuz" } },
      });
    const domains = async () => (await client.listAll<XenDomain>(resources.xenDomains, { namespace: NS })).items;
    await until(
      "running on b1",
      async () => (await domains()).filter((d) => d.status?.phase === "Running").length === 8,
    );
    for (const h of ["b2", "b3"]) await cordon(h, false);
    const sim = fleet.sims.get("b1");
    for (const d of await domains()) sim?.setWorkload(d.status?.uuid ?? "", { load: 0.4 });
    // Two CPU-time samples per domain.
    await new Promise((r) => setTimeout(r, 3500));

    await client.create(resources.xenBalancers, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenBalancer",
      metadata: { name: "default" },
      spec: {
        mode: "Recommend",
        intervalSeconds: 10,
        threshold: 0.05,
        maxMigrationsPerCycle: 3,
        maxMigrationsPerHost: 3,
        cooldownSeconds: 3600,
      },
    });
    await until("a pass ran", async () => !!(await balancer()).status?.lastRunTime);
    let s = (await balancer()).status;
    assert.ok((s?.imbalance ?? 0) > 0.05, `imbalance ${s?.imbalance}`);
    assert.ok((s?.recommendations?.length ?? 0) > 0 && (s?.recommendations?.length ?? 0) <= 3);
    assert.ok((s?.projectedImbalance ?? 1) < (s?.imbalance ?? 0));
    for (const r of s?.recommendations ?? []) {
      assert.equal(r.source, "b1");
      assert.notEqual(r.target, "b1");
    }
    assert.deepEqual(await balanceMigrations(), [], "Recommend moves nothing");
    const first = s?.imbalance ?? 0;

    await client.mergePatch(resources.xenBalancers, "default", undefined, { spec: { mode: "Auto" } });
    await until("migrations created", async () => (await balanceMigrations()).length > 0);
    const firstPass = await balanceMigrations();
    assert.ok(firstPass.length <= 3, "per-pass limit");
    await until(
      "first pass done",
      async () => (await balanceMigrations()).every((m) => m.status?.phase === "Succeeded"),
      60_000,
    );
    // Later passes (every 10 s) measure the new spread and may move others, never the same ones.
    const passes = new Set<string>();
    await until(
      "two more passes",
      async () => {
        const t = (await balancer()).status?.lastRunTime;
        if (t) passes.add(t);
        return passes.size >= 3;
      },
      60_000,
      500,
    );
    await until(
      "their migrations done",
      async () => (await balanceMigrations()).every((m) => ["Succeeded", "Failed"].includes(m.status?.phase ?? "")),
      60_000,
    );
    s = (await balancer()).status;
    assert.ok((s?.imbalance ?? 1) < first, `imbalance fell: ${first} -> ${s?.imbalance}`);
    const moved = (await balanceMigrations()).map((m) => m.spec.domain);
    assert.equal(new Set(moved).size, moved.length, `no domain moved twice within its cooldown: ${moved.join(", ")}`);
    assert.equal(s?.migrationsCreated, moved.length);
    const onB1 = (await domains()).filter((d) => d.status?.host === "b1").length;
    assert.ok(onB1 < 8 && onB1 >= 8 - moved.length);
    assert.deepEqual(rec.overlaps, []);
  });
});
