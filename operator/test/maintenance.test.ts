// Host maintenance with a real API server and sim hosts: a host with 50
// domains drained by every evictionStrategy, a drain cancelled half-way, and
// a second maintenance that must wait for capacity.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { resources, type XenDomain, type XenMaintenance, type XenMigration } from "@kubexen/crds";
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

const log = createLogger("maintenance-test", process.env.LOG_LEVEL ?? "warn");
const NS = "maint";

interface Env {
  cp: ControlPlane;
  client: KubeClient;
  fleet: SimFleet;
  op: Operator;
  rec: OverlapRecorder;
}

async function startEnv(
  hosts: Array<{ name: string; memoryMiB: number; linkMiBps?: number; timeScale?: number }>,
): Promise<Env> {
  const cp = await startKubexenControlPlane([NS]);
  const client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
  const fleet = await startSimFleet(cp, hosts, { logger: log, reportIntervalMs: 500 });
  const rec = new OverlapRecorder(fleet.sims);
  const op = new Operator({
    kubeConfig: cp.kubeConfig(),
    migrationCa: fleet.migrationCa,
    leaderElection: false,
    logger: log,
  });
  await op.start();
  return { cp, client, fleet, op, rec };
}

async function stopEnv(e: Env | undefined): Promise<void> {
  e?.rec.stop();
  await e?.op.stop();
  await e?.fleet.stop();
  await e?.cp.stop();
}

const helpers = (e: () => Env) => ({
  xd: (name: string) => e().client.get<XenDomain>(resources.xenDomains, name, NS),
  maint: (name: string) => e().client.getOrUndefined<XenMaintenance>(resources.xenMaintenances, name),
  cordon: (host: string, unschedulable: boolean) =>
    e().client.mergePatch(resources.xenHosts, host, undefined, { spec: { unschedulable } }),
  domain: (name: string, spec: Record<string, unknown>) =>
    e().client.create(resources.xenDomains, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenDomain",
      metadata: { name, namespace: NS },
      spec: { memory: "64Mi", boot: { kernel: "/boot/vmlinuz" }, ...spec },
    }),
  maintain: (name: string, host: string) =>
    e().client.create(resources.xenMaintenances, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenMaintenance",
      metadata: { name },
      spec: { host, reason: "test" },
    }),
  domains: async () => (await e().client.listAll<XenDomain>(resources.xenDomains, { namespace: NS })).items,
  migrations: async () => (await e().client.listAll<XenMigration>(resources.xenMigrations, { namespace: NS })).items,
});

describe("maintenance: draining a host with 50 domains, then cancelling a drain", () => {
  let env: Env;
  const h = helpers(() => env);
  before(async () => {
    env = await startEnv([
      { name: "m1", memoryMiB: 16384 },
      { name: "o1", memoryMiB: 16384 },
      { name: "o2", memoryMiB: 16384 },
      { name: "o3", memoryMiB: 16384 },
      // A slow link (256 MiB/s in real time) for the drain that is cancelled.
      { name: "c1", memoryMiB: 16384, linkMiBps: 256, timeScale: 1 },
    ]);
  });
  after(() => stopEnv(env));

  const pv = { type: "pv", boot: { bootloader: "pygrub" } };
  const groups: Array<{
    prefix: string;
    n: number;
    spec: Record<string, unknown>;
    fate: "migrated" | "restarted" | "blocked";
  }> = [
    { prefix: "live", n: 40, spec: {}, fate: "migrated" },
    { prefix: "pv-ifp", n: 4, spec: { ...pv, evictionStrategy: "LiveMigrateIfPossible" }, fate: "restarted" },
    { prefix: "restart", n: 2, spec: { evictionStrategy: "Restart" }, fate: "restarted" },
    { prefix: "pv-live", n: 2, spec: { ...pv, evictionStrategy: "LiveMigrate" }, fate: "blocked" },
    { prefix: "none", n: 2, spec: { evictionStrategy: "None" }, fate: "blocked" },
  ];

  it("evacuates each domain by its evictionStrategy, blocks what cannot leave, and says why", async () => {
    for (const o of ["o1", "o2", "o3", "c1"]) await h.cordon(o, true);
    for (const g of groups) for (let i = 0; i < g.n; i++) await h.domain(`${g.prefix}-${i}`, g.spec);
    await until(
      "50 running on m1",
      async () =>
        (await h.domains()).filter((d) => d.status?.phase === "Running" && d.status.host === "m1").length === 50,
      60_000,
    );
    for (const o of ["o1", "o2", "o3"]) await h.cordon(o, false);
    const uuids = new Map((await h.domains()).map((d) => [d.metadata.name, d.status?.uuid]));

    await h.maintain("m1", "m1");
    await until("drain settled", async () => (await h.maint("m1"))?.status?.phase === "Blocked", 180_000, 500);
    const s = (await h.maint("m1"))?.status;
    assert.equal(s?.migrated, 40);
    assert.equal(s?.restarted, 6);
    assert.equal(s?.blocked, 4);
    assert.equal(s?.remaining, 4);
    assert.equal(s?.total, 50);
    const reasons = new Map((s?.blockedDomains ?? []).map((b) => [b.name, b.reason]));
    assert.match(reasons.get("pv-live-0") ?? "", /^cannot live-migrate: pv guests cannot live-migrate from m1/);
    assert.equal(reasons.get("none-1"), "evictionStrategy None: move or stop it yourself");
    assert.equal(s?.conditions?.find((c) => c.type === "Stalled")?.status, "True");

    const now = await h.domains();
    for (const g of groups)
      for (let i = 0; i < g.n; i++) {
        const d = now.find((x) => x.metadata.name === `${g.prefix}-${i}`);
        assert.equal(d?.status?.uuid, uuids.get(d?.metadata.name), "identity kept");
        if (g.fate === "blocked") assert.equal(d?.status?.host, "m1");
        else assert.ok(["o1", "o2", "o3"].includes(d?.status?.host ?? ""), `${d?.metadata.name} left m1`);
      }
    await until(
      "moved domains running",
      async () =>
        (await h.domains()).filter((d) => d.status?.phase === "Running" && d.status.host !== "m1").length === 46,
    );
    const ms = (await h.migrations()).filter((m) => m.metadata.labels?.["kubexen.io/maintenance"] === "m1");
    assert.equal(ms.filter((m) => m.status?.phase === "Succeeded").length, 40);
    assert.ok(ms.every((m) => m.spec.reason === "Maintenance"));
    // Nothing new lands on a host in maintenance.
    assert.equal((await env.fleet.sims.get("m1")?.listDomains())?.length, 4);

    // The user deals with the blocked ones: the host is drained.
    for (const n of ["pv-live-0", "pv-live-1", "none-0", "none-1"])
      await env.client.delete(resources.xenDomains, n, NS);
    await until("drained", async () => (await h.maint("m1"))?.status?.phase === "Drained", 60_000);
    const done = (await h.maint("m1"))?.status;
    assert.equal(done?.remaining, 0);
    assert.ok(done?.completionTime);
    assert.equal(done?.conditions?.find((c) => c.type === "Ready")?.status, "True");

    // Ending maintenance opens the host again.
    await env.client.delete(resources.xenMaintenances, "m1");
    await until("maintenance gone", async () => !(await h.maint("m1")));
    for (const o of ["o1", "o2", "o3"]) await h.cordon(o, true);
    await h.domain("after", {});
    await until("placed on m1", async () => (await h.xd("after")).status?.host === "m1");
    for (const o of ["o1", "o2", "o3"]) await h.cordon(o, false);
    assert.deepEqual(env.rec.overlaps, []);
  });

  it("cancels: withdraws queued migrations, lets running ones finish, uncordons", async () => {
    for (const o of ["m1", "o1", "o2", "o3"]) await h.cordon(o, true);
    await h.cordon("c1", false);
    for (let i = 0; i < 10; i++) await h.domain(`big-${i}`, { memory: "1Gi" });
    await until(
      "10 running on c1",
      async () =>
        (await h.domains()).filter((d) => d.metadata.name?.startsWith("big-") && d.status?.phase === "Running")
          .length === 10,
      60_000,
    );
    for (const o of ["m1", "o1", "o2", "o3"]) await h.cordon(o, false);
    await h.maintain("c1", "c1");
    const mine = async () =>
      (await h.migrations()).filter((m) => m.metadata.labels?.["kubexen.io/maintenance"] === "c1");
    await until(
      "a transfer under way, others queued",
      async () => {
        const ms = await mine();
        return (
          ms.some((m) => m.status?.phase === "Transferring") &&
          ms.some((m) => (m.status?.phase ?? "Pending") === "Pending")
        );
      },
      60_000,
      50,
    );
    const before = await mine();
    await env.client.delete(resources.xenMaintenances, "c1");
    await until("maintenance gone", async () => !(await h.maint("c1")), 90_000);
    const after = await mine();
    // What had not started sending when the cancel came was withdrawn; what had, finished.
    const withdrawn = before.filter((b) => !after.some((a) => a.metadata.uid === b.metadata.uid));
    assert.ok(withdrawn.length > 0, "queued migrations were withdrawn");
    for (const m of after) {
      assert.ok(m.status?.phaseTimestamps?.Transferring, `${m.metadata.name} was kept: it had started sending`);
      assert.ok(["Succeeded", "Failed"].includes(m.status?.phase ?? ""), `${m.metadata.name} finished`);
    }
    assert.ok(after.some((m) => m.status?.phase === "Succeeded"));
    const onC1 = (await h.domains()).filter((d) => d.metadata.name?.startsWith("big-") && d.status?.host === "c1");
    assert.ok(onC1.length > 0 && onC1.length < 10, `${onC1.length} domains stayed on c1`);
    // c1 takes new domains again.
    for (const o of ["m1", "o1", "o2", "o3"]) await h.cordon(o, true);
    await h.domain("after-cancel", {});
    await until("placed on c1", async () => (await h.xd("after-cancel")).status?.host === "c1");
    assert.deepEqual(env.rec.overlaps, []);
  });
});

describe("maintenance: capacity across two maintenances", () => {
  let env: Env;
  const h = helpers(() => env);
  before(async () => {
    // 4 GiB for guests on each of three hosts.
    env = await startEnv(["w1", "w2", "w3"].map((name) => ({ name, memoryMiB: 2048 + 4096 })));
  });
  after(() => stopEnv(env));

  it("makes the second maintenance wait while both hosts away would leave too little room", async () => {
    for (let i = 0; i < 5; i++) await h.domain(`g${i}`, { memory: "1Gi" });
    await until(
      "running",
      async () => (await h.domains()).filter((d) => d.status?.phase === "Running").length === 5,
      60_000,
    );
    await h.maintain("first", "w1");
    await until("first drained", async () => (await h.maint("first"))?.status?.phase === "Drained", 60_000);
    await h.maintain("second", "w2");
    await until("second waits", async () => (await h.maint("second"))?.status?.phase === "Waiting");
    assert.match(
      (await h.maint("second"))?.status?.message ?? "",
      /^without w2 the cluster would have 4096 MiB and \d+ vCPUs for domains that need 5120 MiB and 5 vCPUs \(hosts already in maintenance: w1\)$/,
    );
    assert.ok(
      (await h.domains()).some((d) => d.status?.host === "w2"),
      "nothing left w2",
    );
    await env.client.delete(resources.xenMaintenances, "first");
    await until(
      "second drains once w1 is back",
      async () => (await h.maint("second"))?.status?.phase === "Drained",
      90_000,
    );
    assert.ok((await h.domains()).every((d) => d.status?.host !== "w2"));
    assert.deepEqual(env.rec.overlaps, []);
  });
});
