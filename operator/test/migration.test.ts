// Live migration driven by the operator between sim hosts with real agents
// and their TLS migration streams: a chosen target, a requested one, a target
// without room, and a guest that cannot live-migrate.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { resources, type XenDomain, type XenMigration } from "@kubexen/crds";
import { type ControlPlane, type SimFleet, startKubexenControlPlane, startSimFleet, until } from "@kubexen/e2e";
import {
  coreResources,
  createLogger,
  KubeClient,
  type KubeObject,
  resourcePath,
  SdkMetrics,
  watchOnce,
} from "@kubexen/sdk";
import { Operator } from "../src/index.ts";
import { MIGRATION_FINALIZER } from "../src/migration.ts";

const log = createLogger("migration-test", process.env.LOG_LEVEL ?? "warn");
const NS = "mig-test";

describe("operator: live migration with sim hosts", () => {
  let cp: ControlPlane;
  let client: KubeClient;
  let fleet: SimFleet;
  let op: Operator;
  const xd = (name: string) => client.get<XenDomain>(resources.xenDomains, name, NS);
  const mig = (name: string) => client.get<XenMigration>(resources.xenMigrations, name, NS);
  const domain = (name: string, spec: Record<string, unknown>) =>
    client.create(resources.xenDomains, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenDomain",
      metadata: { name, namespace: NS },
      spec: { boot: { kernel: "/boot/vmlinuz" }, ...spec },
    });
  const migrate = (name: string, domainName: string, targetHost?: string, bandwidthMiBps?: number) =>
    client.create(resources.xenMigrations, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenMigration",
      metadata: { name, namespace: NS },
      spec: { domain: domainName, targetHost, bandwidthMiBps },
    });
  const ended = async (name: string) =>
    ["Succeeded", "Failed", "Aborted"].includes((await mig(name)).status?.phase ?? "");

  before(async () => {
    cp = await startKubexenControlPlane([NS]);
    client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
    fleet = await startSimFleet(
      cp,
      [
        { name: "xen-1", memoryMiB: 8192 },
        { name: "xen-2", memoryMiB: 8192 },
        { name: "small", memoryMiB: 2048 + 256 },
      ],
      { logger: log, reportIntervalMs: 500 },
    );
    op = new Operator({
      kubeConfig: cp.kubeConfig(),
      migrationCa: fleet.migrationCa,
      leaderElection: false,
      logger: log,
    });
    await op.start();
  });
  after(async () => {
    await op?.stop();
    await fleet?.stop();
    await cp?.stop();
  });

  it("moves a running domain to a host it chooses; the domain runs on one host at every moment", async () => {
    await domain("web", { memory: "1Gi", hostSelector: {} });
    await until("running", async () => (await xd("web")).status?.phase === "Running");
    const before = await xd("web");
    const uuid = before.status?.uuid ?? "";
    const overlap: string[] = [];
    const sampler = setInterval(async () => {
      const running: string[] = [];
      for (const [h, s] of fleet.sims) if ((await s.getDomain(uuid))?.state === "running") running.push(h);
      if (running.length > 1) overlap.push(running.join("+"));
    }, 5);
    await migrate("web-move", "web");
    await until("migration ended", () => ended("web-move"), 60_000);
    clearInterval(sampler);
    const m = await mig("web-move");
    assert.equal(m.status?.phase, "Succeeded", m.status?.failureReason);
    assert.equal(m.status?.sourceHost, before.status?.host);
    assert.notEqual(m.status?.targetHost, before.status?.host);
    assert.ok((m.status?.bytesTransferred ?? 0) >= 2 ** 30);
    for (const p of ["Scheduling", "PreparingTarget", "Transferring", "Succeeded"])
      assert.ok(m.status?.phaseTimestamps?.[p], `timestamp for ${p}`);
    await until("bound to the target and running there", async () => {
      const now = await xd("web");
      return now.status?.host === m.status?.targetHost && now.status?.phase === "Running";
    });
    assert.equal((await fleet.sims.get(m.status?.targetHost ?? "")?.getDomain(uuid))?.state, "running");
    assert.equal(await fleet.sims.get(m.status?.sourceHost ?? "")?.getDomain(uuid), undefined);
    assert.deepEqual(overlap, []);
  });

  it("refuses a target without room, with the reason, and leaves the domain running where it was", async () => {
    const host = (await xd("web")).status?.host;
    await migrate("to-small", "web", "small");
    await until("ended", () => ended("to-small"));
    const m = await mig("to-small");
    assert.equal(m.status?.phase, "Failed");
    assert.equal(m.status?.failureReason, "migration to small refused: insufficient memory");
    assert.equal((await xd("web")).status?.host, host);
    assert.equal((await fleet.sims.get(host ?? "")?.getDomain((await xd("web")).status?.uuid ?? ""))?.state, "running");
  });

  it("holds a migration deleted mid-transfer until its source stopped: the domain keeps running where it was", async () => {
    await domain("slow", { memory: "1Gi" });
    await until("running", async () => (await xd("slow")).status?.phase === "Running");
    const before = await xd("slow");
    const host = before.status?.host ?? "";
    const uuid = before.status?.uuid ?? "";
    const domid = (await fleet.sims.get(host)?.getDomain(uuid))?.domid;
    // 1 GiB at 8 MiB/s: two minutes of transfer, deleted in its first seconds.
    await migrate("slow-move", "slow", undefined, 8);
    await until(
      "sending",
      async () =>
        (await mig("slow-move")).status?.phase === "Transferring" &&
        ((await mig("slow-move")).status?.bytesTransferred ?? 0) > 0,
      30_000,
      50,
    );
    assert.ok((await mig("slow-move")).metadata.finalizers?.includes(MIGRATION_FINALIZER), "held while unfinished");
    // Still there, deleting, until the source answered the stop; then Aborted, then gone. Watched,
    // not polled: the last two states may last only milliseconds, and a watch sees every one.
    const seen: string[] = [];
    const stopWatch = new AbortController();
    const watching = watchOnce(client, resourcePath(resources.xenMigrations, NS), {
      query: {
        fieldSelector: "metadata.name=slow-move",
        resourceVersion: (await mig("slow-move")).metadata.resourceVersion,
      },
      inactivityMs: 60_000,
      signal: stopWatch.signal,
      onEvent: (ev) => {
        const m = ev.object as XenMigration;
        seen.push(`${ev.type} ${m.status?.phase}${m.metadata.deletionTimestamp ? " deleting" : ""}`);
      },
    });
    await client.delete(resources.xenMigrations, "slow-move", NS);
    await until("gone", async () => seen.some((s) => s.startsWith("DELETED")), 30_000, 50);
    stopWatch.abort();
    await watching;
    assert.ok(seen.includes("MODIFIED Aborted deleting"), `ended Aborted before it went: ${seen.join(", ")}`);
    assert.ok(
      seen.indexOf("MODIFIED Aborted deleting") < seen.findIndex((s) => s.startsWith("DELETED")),
      `Aborted, then gone: ${seen.join(", ")}`,
    );
    const events = await client.list<KubeObject & { reason?: string; note?: string }>(coreResources.events, {
      namespace: NS,
    });
    assert.ok(
      events.items.some((e) => e.reason === "Aborted" && /deleted during its transfer/.test(e.note ?? "")),
      `an Aborted event says it was deleted: ${events.items.map((e) => `${e.reason}: ${e.note}`).join("; ")}`,
    );
    // The same domain, never stopped, on its source only; nothing on any other host.
    const after = await xd("slow");
    assert.equal(after.status?.host, host);
    assert.equal(after.status?.phase, "Running");
    const there = await fleet.sims.get(host)?.getDomain(uuid);
    assert.equal(there?.state, "running");
    assert.equal(there?.domid, domid, "not restarted");
    for (const [h, sim] of fleet.sims)
      if (h !== host) assert.equal(await sim.getDomain(uuid), undefined, `nothing on ${h}`);
    // A finished migration holds nothing: deleted, it goes at once.
    await migrate("slow-move-2", "slow");
    await until("moved", () => ended("slow-move-2"), 60_000);
    // Released by the reconcile that sees the migration finished, a moment after its last phase.
    await until(
      "finalizer released",
      async () => !(await mig("slow-move-2")).metadata.finalizers?.includes(MIGRATION_FINALIZER),
      10_000,
    );
    await client.delete(resources.xenMigrations, "slow-move-2", NS);
    assert.equal(await client.getOrUndefined(resources.xenMigrations, "slow-move-2", NS), undefined);
  });

  it("fails fast for a guest that cannot live-migrate (pv without shadow paging)", async () => {
    await domain("legacy", { type: "pv", memory: "256Mi", boot: { bootloader: "pygrub" } });
    await until("running", async () => (await xd("legacy")).status?.phase === "Running");
    await migrate("legacy-move", "legacy");
    await until("ended", () => ended("legacy-move"));
    const m = await mig("legacy-move");
    assert.equal(m.status?.phase, "Failed");
    assert.match(
      m.status?.failureReason ?? "",
      /cannot live-migrate: pv guests cannot live-migrate from xen-\d: Xen on this host has no shadow paging/,
    );
  });

  it("throttles a guest that dirties memory as fast as the link carries it, where auto-converge is on", async () => {
    await domain("busy", { memory: "1Gi", migration: { autoConverge: true } });
    await domain("busy-plain", { memory: "1Gi" });
    for (const name of ["busy", "busy-plain"]) {
      await until(`${name} running`, async () => (await xd(name)).status?.phase === "Running");
      const d = await xd(name);
      // The sim's link carries 1250 MiB/s: 320,000 pages a second; this guest dirties as many.
      fleet.sims.get(d.status?.host ?? "")?.setWorkload(d.status?.uuid ?? "", { load: 1, dirtyPagesPerSec: 320_000 });
      await migrate(`${name}-move`, name);
      await until(`${name} migrated`, () => ended(`${name}-move`), 60_000);
    }
    const on = await mig("busy-move");
    const off = await mig("busy-plain-move");
    assert.equal(on.status?.phase, "Succeeded", on.status?.failureReason);
    assert.equal(off.status?.phase, "Succeeded", off.status?.failureReason);
    assert.equal(on.status?.autoConverge, true, "the domain's setting is in force");
    assert.equal(off.status?.autoConverge, false, "the policy's default (off)");
    assert.ok((on.status?.throttlePercent ?? 0) >= 20, `throttled by ${on.status?.throttlePercent}%`);
    assert.equal(off.status?.throttlePercent, undefined);
    assert.ok(
      (on.status?.downtimeMs ?? 0) < (off.status?.downtimeMs ?? 0),
      `downtime ${on.status?.downtimeMs} ms throttled, ${off.status?.downtimeMs} ms not`,
    );
  });
});
