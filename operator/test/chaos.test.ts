// The operator process is SIGKILLed at random moments while 100 live
// migrations run, and restarted each time. Afterwards, from the sim hosts'
// own event streams: no domain ever ran on two hosts; every migration ended
// Succeeded or Failed; every domain runs, on exactly the host it is bound to.
import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { resources, type XenDomain, type XenMigration } from "@kubexen/crds";
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

describe("operator: SIGKILL at random points during 100 migrations", () => {
  let cp: ControlPlane;
  let client: KubeClient;
  let fleet: SimFleet;
  let rec: OverlapRecorder;
  let op: Supervised | undefined;
  let starts = 0;
  const startOperator = () => {
    starts++;
    op = startSupervised(
      "operator",
      process.execPath,
      [MAIN, "--kubeconfig", cp.kubeconfigPath, "--no-leader-elect", "--metrics-port", "0"],
      {
        logFile: join(cp.dir, "operator.log"),
        env: { ...process.env, LOG_LEVEL: "warn" },
      },
    );
  };

  before(async () => {
    cp = await startKubexenControlPlane([NS]);
    client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
    // 128 MiB over a 64 MiB/s link in real time: each transfer takes about 2 s, so kills land mid-transfer.
    fleet = await startSimFleet(
      cp,
      ["x1", "x2", "x3", "x4"].map((name) => ({ name, memoryMiB: 8192, linkMiBps: 64, timeScale: 1 })),
      { logger: log, reportIntervalMs: 1000 },
    );
    rec = new OverlapRecorder(fleet.sims);
    startOperator();
  });
  after(async () => {
    rec?.stop();
    await op?.stop();
    await fleet?.stop();
    await cp?.stop();
  });

  it("never runs a domain on two hosts, ends every migration, and runs every domain", async () => {
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
        await op?.kill();
        kills++;
        await new Promise((r) => setTimeout(r, randomInt(0, 1000)));
        startOperator();
      }
    }
    assert.equal(await unfinished(), 0, "every migration ended");
    log.warn({ kills, starts }, "chaos done");
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
  });
});
