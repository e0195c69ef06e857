// 500 XenDomains created at once on a fleet of sim hosts: every one placed
// and running, no host overbooked by its own accounting, none on two hosts.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { resources, type XenDomain } from "@kubexen/crds";
import { type ControlPlane, type SimFleet, startKubexenControlPlane, startSimFleet, until } from "@kubexen/e2e";
import { createLogger, KubeClient, SdkMetrics } from "@kubexen/sdk";
import { Operator } from "../src/index.ts";

const log = createLogger("scale-test", process.env.LOG_LEVEL ?? "warn");
const NS = "scale";
const N = 500;

describe("operator: 500 concurrent creates", () => {
  let cp: ControlPlane;
  let client: KubeClient;
  let fleet: SimFleet;
  let op: Operator;
  before(async () => {
    cp = await startKubexenControlPlane([NS]);
    client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
    fleet = await startSimFleet(
      cp,
      Array.from({ length: 5 }, (_, i) => ({ name: `xen-${i}`, memoryMiB: 2048 + 7000, cpus: 32 })),
      { logger: log, reportIntervalMs: 2000 },
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

  it("places and runs every domain without overbooking any host", async () => {
    const sizes = [32, 64, 96];
    const queue = Array.from({ length: N }, (_, i) => i);
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
          await client.create(resources.xenDomains, {
            apiVersion: "kubexen.io/v1alpha1",
            kind: "XenDomain",
            metadata: { name: `s${i}`, namespace: NS },
            spec: { memory: `${sizes[i % 3]}Mi`, vcpus: 1, boot: { kernel: "/boot/vmlinuz" } },
          });
        }
      }),
    );
    const domains = async () => (await client.listAll<XenDomain>(resources.xenDomains, { namespace: NS })).items;
    await until(
      "all running",
      async () => (await domains()).filter((d) => d.status?.phase === "Running").length === N,
      240_000,
      1000,
    );
    const where = new Map<string, string[]>();
    for (const [h, sim] of fleet.sims) {
      assert.ok(sim.freeMemoryMiB() >= 0, `${h} overbooked`);
      for (const d of await sim.listDomains()) where.set(d.uuid, [...(where.get(d.uuid) ?? []), h]);
    }
    for (const d of await domains()) {
      assert.deepEqual(
        where.get(d.status?.uuid ?? ""),
        [d.status?.host],
        `${d.metadata.name} runs exactly on its host`,
      );
    }
    // Capacity was tight (total asks 32,000 MiB of 35,000): the scheduler had to use every host.
    for (const sim of fleet.sims.values()) assert.ok((await sim.listDomains()).length > 50);
  });
});
