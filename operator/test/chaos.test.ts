// The operator process is SIGKILLed at random moments while 100 live
// migrations run, and restarted each time. Afterwards, from the sim hosts'
// own event streams: no domain ever ran on two hosts; every migration ended
// Succeeded or Failed; every domain runs, on exactly the host it is bound to.
import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { resources, type XenDomain, type XenMaintenance, type XenMigration } from "@kubexen/crds";
import {
  type ControlPlane,
  OverlapRecorder,
  type SimFleet,
  type Supervised,
  startKubexenControlPlane,
  startSimFleet,
  startSupervised,
  until,
} from "@kubexen/e2e";
import { createLogger, KubeClient, SdkMetrics } from "@kubexen/sdk";

const log = createLogger("chaos-test", process.env.LOG_LEVEL ?? "warn");
const NS = "chaos";
const DOMAINS = 20;
const MIGRATIONS = 100;
const MAIN = join(import.meta.dirname, "..", "src", "main.ts");

/** A control plane, sim hosts with their agents in this process, and the operator as a process to kill. */
interface ChaosEnv {
  cp: ControlPlane;
  client: KubeClient;
  fleet: SimFleet;
  rec: OverlapRecorder;
  starts: number;
  /** SIGKILL the operator, wait 0 to 1 s, start it again. */
  crashAndRestart(): Promise<void>;
  stop(): Promise<void>;
}

async function chaosEnv(hosts: string[], linkMiBps: number): Promise<ChaosEnv> {
  const cp = await startKubexenControlPlane([NS]);
  const client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
  const fleet = await startSimFleet(
    cp,
    hosts.map((name) => ({ name, memoryMiB: 8192, linkMiBps, timeScale: 1 })),
    { logger: log, reportIntervalMs: 1000 },
  );
  const rec = new OverlapRecorder(fleet.sims);
  const start = () =>
    startSupervised(
      "operator",
      process.execPath,
      [
        MAIN,
        "--kubeconfig",
        cp.kubeconfigPath,
        "--no-leader-elect",
        "--metrics-port",
        "0",
        "--migration-ca-cert",
        fleet.ca.certFile,
        "--migration-ca-key",
        fleet.ca.keyFile,
      ],
      { logFile: join(cp.dir, "operator.log"), env: { ...process.env, LOG_LEVEL: "warn" } },
    );
  let op: Supervised = start();
  const env: ChaosEnv = {
    cp,
    client,
    fleet,
    rec,
    starts: 1,
    crashAndRestart: async () => {
      await op.kill();
      await new Promise((r) => setTimeout(r, randomInt(0, 1000)));
      op = start();
      env.starts++;
    },
    stop: async () => {
      rec.stop();
      await op.stop();
      await fleet.stop();
      await cp.stop();
    },
  };
  return env;
}

describe("operator: SIGKILL at random points during 100 migrations", () => {
  let env: ChaosEnv;
  // 128 MiB over a 64 MiB/s link in real time: each transfer takes about 2 s, so kills land mid-transfer.
  before(async () => {
    env = await chaosEnv(["x1", "x2", "x3", "x4"], 64);
  });
  after(() => env?.stop());

  it("never runs a domain on two hosts, ends every migration, and runs every domain", async () => {
    const { client, fleet, rec } = env;
    for (let i = 0; i < DOMAINS; i++)
      await client.create(resources.xenDomains, {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenDomain",
        metadata: { name: `d${i}`, namespace: NS },
        spec: { memory: "128Mi", boot: { kernel: "/boot/vmlinuz" } },
      });
    const domains = async () => (await client.listAll<XenDomain>(resources.xenDomains, { namespace: NS })).items;
    await until(
      "all running",
      async () => (await domains()).filter((d) => d.status?.phase === "Running").length === DOMAINS,
      60_000,
    );
    await rec.seed(fleet.sims);
    for (let i = 0; i < MIGRATIONS; i++)
      await client.create(resources.xenMigrations, {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenMigration",
        metadata: { name: `m${i}`, namespace: NS },
        spec: { domain: `d${i % DOMAINS}` },
      });
    const migrations = async () =>
      (await client.listAll<XenMigration>(resources.xenMigrations, { namespace: NS })).items;
    const unfinished = async () =>
      (await migrations()).filter((m) => !["Succeeded", "Failed", "Aborted"].includes(m.status?.phase ?? "")).length;

    // Kill at random moments (0.3 to 4 s apart), restart after 0 to 1 s, until everything has ended.
    const deadline = Date.now() + 600_000;
    let kills = 0;
    while ((await unfinished()) > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, randomInt(300, 4000)));
      if (kills < 25) {
        await env.crashAndRestart();
        kills++;
      }
    }
    assert.equal(await unfinished(), 0, "every migration ended");
    log.warn({ kills, starts: env.starts }, "chaos done");
    assert.ok(kills >= 5, `the operator was killed ${kills} times`);

    const ms = await migrations();
    const bad = ms.filter((m) => !["Succeeded", "Failed"].includes(m.status?.phase ?? ""));
    assert.deepEqual(
      bad.map((m) => `${m.metadata.name}: ${m.status?.phase} ${m.status?.failureReason}`),
      [],
      "every migration ends Succeeded or Failed",
    );
    const succeeded = ms.filter((m) => m.status?.phase === "Succeeded").length;
    const reasons = [...new Set(ms.map((m) => m.status?.failureReason).filter(Boolean))];
    assert.ok(
      succeeded >= MIGRATIONS * 0.9,
      `${succeeded} of ${MIGRATIONS} succeeded; failures: ${reasons.join(" | ")}`,
    );

    await until(
      "every domain running",
      async () => (await domains()).filter((d) => d.status?.phase === "Running").length === DOMAINS,
      60_000,
    );
    const where = new Map<string, string[]>();
    for (const [h, sim] of fleet.sims)
      for (const d of await sim.listDomains()) where.set(d.uuid, [...(where.get(d.uuid) ?? []), h]);
    for (const d of await domains())
      assert.deepEqual(where.get(d.status?.uuid ?? ""), [d.status?.host], `${d.metadata.name} runs only on its host`);
    assert.deepEqual(rec.overlaps, [], "no domain ever ran on two hosts");
    const restarted = (await domains()).filter((d) => rec.boots.get(d.status?.uuid ?? "") !== 1);
    assert.deepEqual(
      restarted.map((d) => `${d.metadata.name}: ${rec.boots.get(d.status?.uuid ?? "")} boots`),
      [],
      "live migration never restarted a guest",
    );
  });
});

describe("operator: SIGKILL at random points during a drain", () => {
  let env: ChaosEnv;
  before(async () => {
    env = await chaosEnv(["dr", "y1", "y2", "y3"], 128);
  });
  after(() => env?.stop());

  it("resumes the drain after each restart and completes it", async () => {
    const { client, fleet, rec } = env;
    const cordon = (h: string, unschedulable: boolean) =>
      client.mergePatch(resources.xenHosts, h, undefined, { spec: { unschedulable } });
    await until("hosts registered", async () => (await client.list(resources.xenHosts)).items.length === 4);
    for (const h of ["y1", "y2", "y3"]) await cordon(h, true);
    const N = 24;
    for (let i = 0; i < N; i++)
      await client.create(resources.xenDomains, {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenDomain",
        metadata: { name: `e${i}`, namespace: NS },
        spec: {
          memory: "128Mi",
          boot: { kernel: "/boot/vmlinuz" },
          evictionStrategy: i % 6 === 0 ? "Restart" : "LiveMigrate",
        },
      });
    const domains = async () => (await client.listAll<XenDomain>(resources.xenDomains, { namespace: NS })).items;
    await until(
      "all on dr",
      async () => (await domains()).filter((d) => d.status?.phase === "Running").length === N,
      60_000,
    );
    for (const h of ["y1", "y2", "y3"]) await cordon(h, false);
    await rec.seed(fleet.sims);
    await client.create(resources.xenMaintenances, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenMaintenance",
      metadata: { name: "dr" },
      spec: { host: "dr" },
    });
    const maint = () => client.get<XenMaintenance>(resources.xenMaintenances, "dr");
    let kills = 0;
    const deadline = Date.now() + 300_000;
    while ((await maint()).status?.phase !== "Drained" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, randomInt(500, 3000)));
      if (kills < 15 && (await maint()).status?.phase !== "Drained") {
        await env.crashAndRestart();
        kills++;
      }
    }
    const s = (await maint()).status;
    assert.equal(s?.phase, "Drained", JSON.stringify({ ...s, conditions: undefined }));
    assert.ok(kills >= 3, `killed ${kills} times`);
    assert.equal(s?.remaining, 0);
    assert.equal((s?.migrated ?? 0) + (s?.restarted ?? 0), N, `${s?.migrated} migrated, ${s?.restarted} restarted`);
    assert.equal(s?.restarted, 4, "the Restart ones, each counted once");
    await until(
      "all running elsewhere",
      async () => (await domains()).filter((d) => d.status?.phase === "Running" && d.status.host !== "dr").length === N,
      60_000,
    );
    assert.deepEqual(await fleet.sims.get("dr")?.listDomains(), []);
    assert.deepEqual(rec.overlaps, [], "no domain ever ran on two hosts");
    for (const d of await domains()) {
      const want = d.spec.evictionStrategy === "Restart" ? 2 : 1;
      assert.equal(rec.boots.get(d.status?.uuid ?? ""), want, `${d.metadata.name} booted ${want} times`);
    }
  });
});
