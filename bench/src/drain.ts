// Benchmark 3: draining a host of 50 domains under the default migration
// limits (5 per cluster, 2 out of a host, 2 into a host), against the lower
// bound: the memory to move divided by the bandwidth those limits allow
// (2 concurrent outbound streams at the link's bandwidth).
import { resources, type XenDomain, type XenMaintenance } from "@kubexen/crds";
import { startKubexenControlPlane, startSimFleet, until } from "@kubexen/e2e";
import { Operator } from "@kubexen/operator";
import { createLogger, KubeClient, SdkMetrics } from "@kubexen/sdk";

const log = createLogger("bench-drain", "error");

export async function runDrain(size: "small" | "full") {
  const n = size === "full" ? 50 : 8;
  const memMiB = size === "full" ? 512 : 128;
  const linkMiBps = 256;
  const cp = await startKubexenControlPlane(["bench"]);
  const client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
  // timeScale 1: a modelled second is a real second, so the makespan is wall time.
  const fleet = await startSimFleet(
    cp,
    ["src", "t1", "t2", "t3"].map((name) => ({ name, memoryMiB: 2048 + n * memMiB + 1024, linkMiBps, timeScale: 1 })),
    { logger: log, reportIntervalMs: 2000 },
  );
  const op = new Operator({
    kubeConfig: cp.kubeConfig(),
    migrationCa: fleet.migrationCa,
    leaderElection: false,
    logger: log,
  });
  await op.start();
  // When each transfer runs on the source, to tell transfer time from the time between transfers.
  const sends: Array<{ start: number; end: number }> = [];
  const src = fleet.sims.get("src");
  if (src) {
    const send = src.migrateSend.bind(src);
    src.migrateSend = async (uuid, transport, opts) => {
      const start = Date.now();
      const stats = await send(uuid, transport, opts);
      sends.push({ start, end: Date.now() });
      return stats;
    };
  }
  try {
    await until("hosts", async () => (await client.list(resources.xenHosts)).items.length === 4, 30_000);
    for (const h of ["t1", "t2", "t3"])
      await client.mergePatch(resources.xenHosts, h, undefined, { spec: { unschedulable: true } });
    for (let i = 0; i < n; i++)
      await client.create(resources.xenDomains, {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenDomain",
        metadata: { name: `d${i}`, namespace: "bench" },
        spec: { memory: `${memMiB}Mi`, boot: { kernel: "/boot/vmlinuz" } },
      });
    await until(
      "all on src",
      async () =>
        (await client.listAll<XenDomain>(resources.xenDomains, { namespace: "bench" })).items.filter(
          (d) => d.status?.phase === "Running" && d.status.host === "src",
        ).length === n,
      120_000,
    );
    for (const h of ["t1", "t2", "t3"])
      await client.mergePatch(resources.xenHosts, h, undefined, { spec: { unschedulable: false } });
    const t0 = Date.now();
    await client.create(resources.xenMaintenances, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenMaintenance",
      metadata: { name: "src" },
      spec: { host: "src" },
    });
    let eta: string | undefined;
    await until(
      "drained",
      async () => {
        const m = await client.get<XenMaintenance>(resources.xenMaintenances, "src");
        eta ??= m.status?.eta;
        return m.status?.phase === "Drained";
      },
      900_000,
      100,
    );
    const makespanS = (Date.now() - t0) / 1000;
    const boundS = (n * memMiB) / (2 * linkMiBps);
    // Transfers: their mean length against memory / link, and what is left of the two streams'
    // time (2 x makespan) for everything between transfers (admission, target choice, handover).
    const transferS = sends.reduce((a, x) => a + (x.end - x.start), 0) / 1000;
    return {
      domains: n,
      memoryMiB: memMiB,
      linkMiBps,
      makespanS,
      boundS,
      ratio: makespanS / boundS,
      firstEta: eta,
      meanTransferS: sends.length ? transferS / sends.length : undefined,
      idealTransferS: memMiB / linkMiBps,
      betweenTransfersS: 2 * makespanS - transferS,
      firstTransferAfterS: sends.length ? (Math.min(...sends.map((x) => x.start)) - t0) / 1000 : undefined,
    };
  } finally {
    await op.stop();
    await fleet.stop();
    await cp.stop();
  }
}
