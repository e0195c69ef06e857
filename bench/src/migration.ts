// Benchmark 2: the operator's own overhead around a live migration on sim
// hosts: from the XenMigration's creation to the first byte the source sends,
// and from the last byte to the migration observed Succeeded.
import { resources, type XenDomain, type XenMigration } from "@kubexen/crds";
import { startKubexenControlPlane, startSimFleet, until } from "@kubexen/e2e";
import { Operator } from "@kubexen/operator";
import { createLogger, Informer, KubeClient, SdkMetrics } from "@kubexen/sdk";
import { percentile } from "./machine.ts";

const log = createLogger("bench-migration", "error");

export async function runMigration(size: "small" | "full") {
  const n = size === "full" ? 50 : 5;
  const cp = await startKubexenControlPlane(["bench"]);
  const client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
  const fleet = await startSimFleet(
    cp,
    ["m1", "m2"].map((name) => ({ name, memoryMiB: 8192 })),
    { logger: log, reportIntervalMs: 2000 },
  );
  const op = new Operator({
    kubeConfig: cp.kubeConfig(),
    migrationCa: fleet.migrationCa,
    leaderElection: false,
    logger: log,
  });
  await op.start();
  // Instrument the sims' send: when the first byte leaves and the last byte is acknowledged.
  const sends = new Map<string, { first: number; last?: number }>();
  for (const sim of fleet.sims.values()) {
    const send = sim.migrateSend.bind(sim);
    sim.migrateSend = async (uuid, transport, opts) => {
      const rec: { first: number; last?: number } = { first: performance.timeOrigin + performance.now() };
      sends.set(uuid, rec);
      const stats = await send(uuid, transport, opts);
      rec.last = performance.timeOrigin + performance.now();
      return stats;
    };
  }
  const metrics = new SdkMetrics();
  const watcher = new Informer<XenMigration>(new KubeClient(cp.kubeConfig(), { metrics }), resources.xenMigrations, {
    logger: log,
    metrics,
  });
  const succeededAt = new Map<string, number>();
  watcher.addHandler((ev) => {
    if (ev.obj.status?.phase === "Succeeded" && !succeededAt.has(ev.obj.metadata.name ?? ""))
      succeededAt.set(ev.obj.metadata.name ?? "", performance.timeOrigin + performance.now());
  });
  watcher.start();
  await watcher.synced();
  const toFirstByte: number[] = [];
  const afterLastByte: number[] = [];
  const total: number[] = [];
  try {
    await client.create(resources.xenDomains, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenDomain",
      metadata: { name: "guest", namespace: "bench" },
      spec: { memory: "256Mi", boot: { kernel: "/boot/vmlinuz" } },
    });
    const xd = () => client.get<XenDomain>(resources.xenDomains, "guest", "bench");
    await until("running", async () => (await xd()).status?.phase === "Running", 30_000);
    for (let i = 0; i < n; i++) {
      const uuid = (await xd()).status?.uuid ?? "";
      sends.delete(uuid);
      const name = `m${i}`;
      const created = performance.timeOrigin + performance.now();
      await client.create(resources.xenMigrations, {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenMigration",
        metadata: { name, namespace: "bench" },
        spec: { domain: "guest" },
      });
      await until("succeeded", async () => succeededAt.has(name), 60_000, 5);
      const s = sends.get(uuid);
      const done = succeededAt.get(name) ?? 0;
      if (!s?.last) throw new Error(`migration ${name} succeeded without a recorded send`);
      toFirstByte.push(s.first - created);
      afterLastByte.push(done - s.last);
      total.push(done - created);
      await until("running again", async () => (await xd()).status?.phase === "Running", 30_000, 20);
    }
  } finally {
    await watcher.stop();
    await op.stop();
    await fleet.stop();
    await cp.stop();
  }
  const stats = (xs: number[]) => ({ p50: percentile(xs, 50), p95: percentile(xs, 95), max: Math.max(...xs) });
  return {
    migrations: n,
    toFirstByteMs: stats(toFirstByte),
    afterLastByteMs: stats(afterLastByte),
    totalMs: stats(total),
    samples: { toFirstByte, afterLastByte },
  };
}
