// Migration policy enforced end to end (real API server, sim hosts with a
// slow link so migrations overlap): the cluster, outbound and inbound limits
// hold at every moment; the completion and progress timeouts abort and leave
// the domain running on its source; a link broken at the handover is settled
// from the target's report, resuming or destroying the paused source copy.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { resources, type XenDomain, type XenMigration, type XenMigrationPolicy } from "@kubexen/crds";
import {
  type ControlPlane,
  OverlapRecorder,
  type SimFleet,
  startKubexenControlPlane,
  startSimFleet,
  until,
} from "@kubexen/e2e";
import { createLogger, Informer, KubeClient, objectKey, SdkMetrics } from "@kubexen/sdk";
import { Operator } from "../src/index.ts";

const log = createLogger("migration-limits-test", process.env.LOG_LEVEL ?? "warn");
const NS = "mig-limits";
const HOSTS = ["a", "b", "c", "d"];
const ACTIVE = new Set(["Scheduling", "PreparingTarget", "Transferring"]);

describe("operator: migration limits, timeouts and broken handovers", () => {
  let cp: ControlPlane;
  let client: KubeClient;
  let fleet: SimFleet;
  let op: Operator;
  let rec: OverlapRecorder;
  const xd = (name: string) => client.get<XenDomain>(resources.xenDomains, name, NS);
  const mig = (name: string) => client.get<XenMigration>(resources.xenMigrations, name, NS);
  const domain = (name: string, memory: string) =>
    client.create(resources.xenDomains, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenDomain",
      metadata: { name, namespace: NS },
      spec: { memory, boot: { kernel: "/boot/vmlinuz" } },
    });
  const migrate = (name: string, domainName: string, spec: Record<string, unknown> = {}) =>
    client.create(resources.xenMigrations, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenMigration",
      metadata: { name, namespace: NS },
      spec: { domain: domainName, ...spec },
    });
  const ended = async (name: string) =>
    ["Succeeded", "Failed", "Aborted"].includes((await mig(name)).status?.phase ?? "");
  const running = async (name: string) => {
    const d = await xd(name);
    return d.status?.phase === "Running" ? d : undefined;
  };

  before(async () => {
    cp = await startKubexenControlPlane([NS]);
    client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
    // 32 MiB/s in real time: a 128 MiB domain takes about 4 s to move.
    fleet = await startSimFleet(
      cp,
      HOSTS.map((name) => ({ name, memoryMiB: 16384, linkMiBps: 32, timeScale: 1 })),
      { logger: log, reportIntervalMs: 500 },
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

  it("never exceeds the cluster, outbound or inbound limit, and uses the cluster's in full", async () => {
    await client.create(resources.xenMigrationPolicies, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenMigrationPolicy",
      metadata: { name: "default" },
      spec: {
        parallelMigrationsPerCluster: 3,
        parallelOutboundMigrationsPerHost: 1,
        parallelInboundMigrationsPerHost: 1,
      },
    });
    // The limits hold from the moment the operator reports the policy in force (an informer may lag
    // behind the create); the report names the generation and the limits it applies.
    const policy = () => client.get<XenMigrationPolicy>(resources.xenMigrationPolicies, "default");
    const inForce = async () => {
      const p = await policy();
      const ready = p.status?.conditions?.find((c) => c.type === "Ready" && c.status === "True");
      return (
        p.status?.observedGeneration === p.metadata.generation && ready?.observedGeneration === p.metadata.generation
      );
    };
    await until("the operator reports the policy in force", inForce, 30_000);
    assert.match(
      (await policy()).status?.conditions?.find((c) => c.type === "Ready")?.message ?? "",
      /^in force: 3 transfers in the cluster, 1 out of and 1 into each host; abort after 150 s per GiB/,
    );
    const names = Array.from({ length: 12 }, (_, i) => `vm${i}`);
    for (const n of names) await domain(n, "128Mi");
    await until("all running", async () => (await Promise.all(names.map(running))).every(Boolean), 60_000);

    // Watch every migration's phase as the API server stores it, and check the limits at each change.
    const metrics = new SdkMetrics();
    const watcher = new Informer<XenMigration>(new KubeClient(cp.kubeConfig(), { metrics }), resources.xenMigrations, {
      logger: log,
      metrics,
    });
    // Transfers (told to send, the source not done) count against the cluster and outbound limits;
    // as many may be staged ahead (target chosen and made ready); inbound counts both at the target.
    const peak = { cluster: 0, outbound: 0, inbound: 0, staged: 0 };
    const violations: string[] = [];
    const sourceDone = (m: XenMigration) =>
      m.status?.conditions?.some((c) => c.type === "SourceDone" && c.status === "True");
    watcher.addHandler(() => {
      const all = watcher.list();
      const active = all.filter((m) => ACTIVE.has(m.status?.phase ?? ""));
      const streams = active.filter((m) => m.status?.phase === "Transferring" && !sourceDone(m));
      const staged = active.filter((m) => m.status?.phase !== "Transferring");
      const per = (xs: XenMigration[], f: (m: XenMigration) => string | undefined) => {
        const c = new Map<string, number>();
        for (const m of xs) {
          const k = f(m);
          if (k) c.set(k, (c.get(k) ?? 0) + 1);
        }
        return Math.max(0, ...c.values());
      };
      const now = {
        cluster: streams.length,
        outbound: per(streams, (m) => m.status?.sourceHost),
        inbound: per(active, (m) => m.status?.targetHost),
        staged: staged.length,
        stagedOutbound: per(staged, (m) => m.status?.sourceHost),
      };
      peak.cluster = Math.max(peak.cluster, now.cluster);
      peak.outbound = Math.max(peak.outbound, now.outbound);
      peak.inbound = Math.max(peak.inbound, now.inbound);
      peak.staged = Math.max(peak.staged, now.staged);
      if (now.cluster > 3 || now.outbound > 1 || now.inbound > 1 || now.staged > 3 || now.stagedOutbound > 1)
        violations.push(`${JSON.stringify(now)}: ${active.map(objectKey).join(", ")}`);
    });
    watcher.start();
    await watcher.synced();
    try {
      for (const n of names) await migrate(`move-${n}`, n);
      await until(
        "all migrations ended",
        async () => (await Promise.all(names.map((n) => ended(`move-${n}`)))).every(Boolean),
        240_000,
      );
    } finally {
      await watcher.stop();
    }
    for (const n of names) {
      const m = await mig(`move-${n}`);
      assert.equal(m.status?.phase, "Succeeded", `${n}: ${m.status?.failureReason}`);
    }
    assert.deepEqual(violations, []);
    assert.deepEqual(
      { cluster: peak.cluster, outbound: peak.outbound, inbound: peak.inbound },
      { cluster: 3, outbound: 1, inbound: 1 },
      "each limit was reached, none exceeded",
    );
    assert.ok(peak.staged >= 1, "migrations were staged ahead of their transfer");
    assert.equal((await mig("move-vm0")).status?.bandwidthMiBps, 0, "the policy's: unlimited");
    assert.deepEqual(rec.overlaps, []);
    await client.delete(resources.xenMigrationPolicies, "default");
  });

  it("aborts on the completion timeout and the progress timeout, leaving the domain running on its source", async () => {
    await client.create(resources.xenDomains, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenDomain",
      metadata: { name: "big", namespace: NS },
      spec: { memory: "1Gi", boot: { kernel: "/boot/vmlinuz" }, migration: { bandwidthMiBps: 64 } },
    });
    await until("running", async () => !!(await running("big")), 30_000);
    const src = (await xd("big")).status?.host ?? "";
    const uuid = (await xd("big")).status?.uuid ?? "";
    // 1 GiB at 32 MiB/s needs 32 s; 3 s per GiB is not enough.
    await migrate("too-slow", "big", { completionTimeoutPerGiB: 3 });
    await until("ended", () => ended("too-slow"), 60_000);
    let m = await mig("too-slow");
    assert.equal(m.status?.phase, "Aborted");
    assert.equal(m.status?.failureReason, "no completion within 3 s (completion timeout)");
    assert.equal(m.status?.bandwidthMiBps, 64, "the domain's limit, the migration having none");
    await until("still running on its source", async () => {
      const d = await xd("big");
      return d.status?.host === src && (await fleet.sims.get(src)?.getDomain(uuid))?.state === "running";
    });
    for (const h of HOSTS.filter((x) => x !== src))
      await until(`nothing left on ${h}`, async () => !(await fleet.sims.get(h)?.getDomain(uuid)));

    // Throttled to 1 MiB/s, the first pre-copy round of 1 GiB cannot finish: no progress is reported.
    await migrate("stuck", "big", { progressTimeoutSeconds: 2, bandwidthMiBps: 1 });
    await until("ended", () => ended("stuck"), 60_000);
    m = await mig("stuck");
    assert.equal(m.status?.phase, "Aborted");
    assert.equal(m.status?.failureReason, "no progress for 2 s (progress timeout)");
    assert.equal(m.status?.bandwidthMiBps, 1, "the migration's own limit wins");
    assert.equal(m.status?.conditions?.find((c) => c.type === "SourceDone")?.reason, "SendFailed");
    assert.equal((await xd("big")).status?.host, src);
    assert.equal((await fleet.sims.get(src)?.getDomain(uuid))?.state, "running");
    assert.deepEqual(rec.overlaps, []);
  });

  it("resumes the source copy when the link breaks before the target got the go", async () => {
    await domain("hb", "128Mi");
    await until("running", async () => !!(await running("hb")), 30_000);
    const src = (await xd("hb")).status?.host ?? "";
    const uuid = (await xd("hb")).status?.uuid ?? "";
    const sim = fleet.sims.get(src);
    if (!sim) throw new Error("no source sim");
    sim.faults.migration = { phase: "handover", side: "send" };
    await migrate("hb-move", "hb");
    await until("ended", () => ended("hb-move"), 60_000);
    const m = await mig("hb-move");
    assert.equal(m.status?.phase, "Failed");
    // Whichever side reports first names the failure; the target's report says it runs nothing.
    assert.match(
      m.status?.failureReason ?? "",
      /link broke at the handover and \w did not start the domain|the target could not start the domain/,
    );
    await until(
      "resumed on the source",
      async () => {
        const d = await sim.getDomain(uuid);
        return d?.state === "running" && d.migration === undefined;
      },
      60_000,
    );
    assert.equal((await xd("hb")).status?.host, src);
    await until("running again", async () => (await xd("hb")).status?.phase === "Running", 60_000);
    assert.deepEqual(rec.overlaps, []);
  });

  it("hands over and destroys the source copy when the link breaks after the target got the go", async () => {
    await domain("hc", "128Mi");
    await until("running", async () => !!(await running("hc")), 30_000);
    const src = (await xd("hc")).status?.host ?? "";
    const uuid = (await xd("hc")).status?.uuid ?? "";
    const sim = fleet.sims.get(src);
    if (!sim) throw new Error("no source sim");
    sim.faults.migration = { phase: "confirm", side: "send" };
    await migrate("hc-move", "hc");
    await until("ended", () => ended("hc-move"), 60_000);
    const m = await mig("hc-move");
    assert.equal(m.status?.phase, "Succeeded", m.status?.failureReason);
    const c = m.status?.conditions?.find((x) => x.type === "SourceDone");
    assert.equal(c?.reason, "Ambiguous", "the source could not know");
    await until("source copy destroyed", async () => !(await sim.getDomain(uuid)), 60_000);
    const target = m.status?.targetHost ?? "";
    assert.equal((await fleet.sims.get(target)?.getDomain(uuid))?.state, "running");
    await until("bound to the target", async () => (await xd("hc")).status?.host === target, 60_000);
    assert.deepEqual(rec.overlaps, []);
  });
});
