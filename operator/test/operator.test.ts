// The operator with three sim-driven agents on a real API server: many
// domains created at once are all placed and run with no host overbooked
// (checked from the hosts' own accounting), an unschedulable domain says why
// per cause, cordoned hosts get nothing new, and deletion stops the domain
// on its host before the XenDomain goes.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { resources, type XenDomain } from "@kubexen/crds";
import { type ControlPlane, type SimFleet, startKubexenControlPlane, startSimFleet, until } from "@kubexen/e2e";
import { createLogger, KubeClient, SdkMetrics } from "@kubexen/sdk";
import { Operator } from "../src/index.ts";

const log = createLogger("operator-test", process.env.LOG_LEVEL ?? "warn");
const NS = "op-test";
const HOSTS = ["xen-1", "xen-2", "xen-3"];

describe("operator: placement and lifecycle with sim hosts", () => {
  let cp: ControlPlane;
  let client: KubeClient;
  let op: Operator;
  let fleet: SimFleet;
  const list = async () => (await client.list<XenDomain>(resources.xenDomains, { namespace: NS })).items;

  before(async () => {
    cp = await startKubexenControlPlane([NS]);
    client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
    fleet = await startSimFleet(
      cp,
      HOSTS.map((name) => ({ name, memoryMiB: 8192, dom0MemoryMiB: 2048, cpus: 8, files: ["/boot/vmlinuz"] })),
      { logger: log, heartbeatIntervalMs: 2000, reportIntervalMs: 1000 },
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

  it("places 40 domains created at once, runs each on its host, and overbooks none", async () => {
    const sizes = Array.from({ length: 40 }, (_, i) => [256, 384, 512][i % 3] as number);
    await Promise.all(
      sizes.map((mib, i) =>
        client.create(resources.xenDomains, {
          apiVersion: "kubexen.io/v1alpha1",
          kind: "XenDomain",
          metadata: { name: `d${i}`, namespace: NS },
          spec: { memory: `${mib}Mi`, vcpus: 1, boot: { kernel: "/boot/vmlinuz" } },
        }),
      ),
    );
    await until(
      "all running",
      async () => (await list()).filter((d) => d.status?.phase === "Running").length === 40,
      90_000,
    );
    for (const d of await list()) {
      const sim = fleet.sims.get(d.status?.host ?? "");
      assert.ok(sim, `${d.metadata.name} bound to a known host`);
      assert.equal(
        (await sim.getDomain(d.status?.uuid ?? ""))?.state,
        "running",
        `${d.metadata.name} runs on its host`,
      );
      for (const [h, other] of fleet.sims)
        if (h !== d.status?.host) assert.equal(await other.getDomain(d.status?.uuid ?? ""), undefined);
      assert.ok(d.metadata.finalizers?.includes("kubexen.io/domain"));
      assert.ok(d.status?.conditions?.some((c) => c.type === "Scheduled" && c.status === "True"));
    }
    for (const [h, sim] of fleet.sims) {
      assert.ok(sim.freeMemoryMiB() >= 0, `${h} not overbooked`);
      assert.ok((await sim.listDomains()).length > 5, `${h} got a share (spread)`);
    }
  });

  it("says why a domain cannot be placed, per cause", async () => {
    await client.create(resources.xenDomains, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenDomain",
      metadata: { name: "too-big", namespace: NS },
      spec: { memory: "64Gi", boot: { kernel: "/boot/vmlinuz" } },
    });
    await until("unschedulable", async () => {
      const d = await client.get<XenDomain>(resources.xenDomains, "too-big", NS);
      return (
        d.status?.conditions?.some(
          (c) =>
            c.type === "Scheduled" &&
            c.status === "False" &&
            c.message === "0/3 hosts available: 3 insufficient memory",
        ) === true
      );
    });
    const d = await client.get<XenDomain>(resources.xenDomains, "too-big", NS);
    assert.equal(d.status?.phase, "Unschedulable");
    assert.deepEqual(d.status?.unschedulableReasons, { "insufficient memory": 3 });
    await client.delete(resources.xenDomains, "too-big", NS);
  });

  it("places nothing new on a cordoned host", async () => {
    await client.mergePatch(resources.xenHosts, "xen-1", undefined, { spec: { unschedulable: true } });
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 0; i < 5; i++) {
      await client.create(resources.xenDomains, {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenDomain",
        metadata: { name: `after-cordon-${i}`, namespace: NS },
        spec: { memory: "64Mi", boot: { kernel: "/boot/vmlinuz" } },
      });
    }
    await until(
      "placed",
      async () =>
        (await list()).filter((d) => d.metadata.name?.startsWith("after-cordon") && d.status?.host).length === 5,
    );
    for (const d of await list())
      if (d.metadata.name?.startsWith("after-cordon")) assert.notEqual(d.status?.host, "xen-1");
    await client.mergePatch(resources.xenHosts, "xen-1", undefined, { spec: { unschedulable: false } });
  });

  it("stops a deleted domain on its host before the XenDomain goes", async () => {
    const d = await client.get<XenDomain>(resources.xenDomains, "d0", NS);
    const sim = fleet.sims.get(d.status?.host ?? "");
    assert.ok(sim, "d0 is bound to a fleet host");
    await client.delete(resources.xenDomains, "d0", NS);
    await until("gone", async () => (await client.getOrUndefined(resources.xenDomains, "d0", NS)) === undefined);
    assert.equal(await sim.getDomain(d.status?.uuid ?? ""), undefined);
  });
});
