// Benchmark 1: the control plane at scale. A real API server, a fleet of sim
// hosts (their agents in this process), the operator as its own process.
// XenDomains are created at a steady rate or in one burst; for each, the time
// from its create request to the moment a watch sees it Running.
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { resources, type XenDomain } from "@kubexen/crds";
import { type ControlPlane, startKubexenControlPlane, startSimFleet, startSupervised, until } from "@kubexen/e2e";
import { SCHEDULER_MANAGER } from "@kubexen/operator";
import { createLogger, Informer, KubeClient, SdkMetrics, setCondition } from "@kubexen/sdk";
import { parseAllDocuments } from "yaml";
import { percentile } from "./machine.ts";
import { apiRequestsBy, apiRequestsDelta, counterSum, procSample } from "./procstat.ts";

const log = createLogger("bench-scale", process.env.BENCH_LOG_LEVEL ?? "error");
const OPERATOR = join(import.meta.dirname, "../../operator/src/main.ts");
const CHART = join(import.meta.dirname, "../../charts/kubexen");
// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are read as plain data.
type Any = any;

/**
 * The operator's Node options as the chart deploys them (its Deployment's NODE_OPTIONS, from
 * `helm template` with the default values): its memory is measured as deployed.
 */
export async function chartNodeOptions(cp: ControlPlane): Promise<string[]> {
  const r = await cp.helm(["template", "kubexen", CHART, "--namespace", "kubexen-system"]);
  if (r.code !== 0) throw new Error(`helm template ${CHART}: ${r.stderr}`);
  for (const doc of parseAllDocuments(r.stdout)) {
    const o = doc.toJS() as Any;
    if (o?.kind !== "Deployment" || !String(o.metadata?.name).endsWith("-operator")) continue;
    const env = (o.spec.template.spec.containers[0]?.env ?? []) as Array<{ name: string; value?: string }>;
    const opts = env.find((e) => e.name === "NODE_OPTIONS")?.value;
    if (!opts) throw new Error(`${CHART}: the operator's Deployment sets no NODE_OPTIONS`);
    return opts.split(" ").filter(Boolean);
  }
  throw new Error(`${CHART}: no operator Deployment rendered`);
}

export interface ScaleOptions {
  hosts: number;
  domains: number;
  /** Creates per second; 0 for one burst. */
  rate: number;
  timeoutS: number;
  /**
   * The API server's floor instead of kubexen: no operator and no agents. Each domain is bound
   * and reported Running by the benchmark itself, right after its create, with the scheduler's
   * and the agent's status applies: the three writes any design needs per domain. `watchers`
   * idle watches select `status.host=` of one host each, as the agents' do (0: none), so the
   * API server's fan-out of every event to them is measured apart from the rest.
   */
  floor?: { watchers: number };
}

/** The floor's stand-in for the scheduler's bind and the agent's Running report (see ScaleOptions.floor). */
async function bindAndReport(client: KubeClient, name: string, host: string): Promise<void> {
  const meta = { name, namespace: "bench" };
  const base = { apiVersion: "kubexen.io/v1alpha1", kind: "XenDomain", metadata: meta };
  await client.applyStatus(resources.xenDomains, { ...base, status: { host, uuid: randomUUID() } }, SCHEDULER_MANAGER);
  const conditions = setCondition(undefined, {
    type: "Ready",
    status: "True",
    reason: "Running",
    message: `Running on ${host}`,
  });
  await client.applyStatus(
    resources.xenDomains,
    { ...base, status: { phase: "Running", state: "running", domid: 1, conditions } },
    `kubexen-agent-${host}`,
  );
}

export async function runScale(o: ScaleOptions) {
  const perHost = Math.ceil((o.domains / o.hosts) * 1.5);
  const cp = await startKubexenControlPlane(["bench"]);
  const nodeOptions = await chartNodeOptions(cp);
  // Everyone authenticates by bearer token, as the chart's service accounts do.
  const kubeConfig = () => cp.kubeConfig({ token: true });
  const client = new KubeClient(kubeConfig(), { metrics: new SdkMetrics() });
  const fleet = o.floor
    ? undefined
    : await startSimFleet(
        cp,
        Array.from({ length: o.hosts }, (_, i) => ({ name: `x${i}`, memoryMiB: 2048 + perHost * 64, cpus: 64 })),
        { logger: log, reportIntervalMs: 10_000, kubeConfigFor: kubeConfig },
      );
  const op = o.floor
    ? undefined
    : startSupervised(
        "operator",
        process.execPath,
        [
          ...nodeOptions,
          ...(process.env.BENCH_OPERATOR_ARGS ?? "").split(" ").filter(Boolean),
          OPERATOR,
          "--kubeconfig",
          cp.tokenKubeconfigPath,
          "--no-leader-elect",
          "--metrics-port",
          "0",
        ],
        { logFile: join(cp.dir, "operator.log"), env: { ...process.env, LOG_LEVEL: "warn" } },
      );
  // The floor's idle agent-style watches, each on its own connection as each agent's is.
  const idle = Array.from({ length: o.floor?.watchers ?? 0 }, (_, i) => {
    const m = new SdkMetrics();
    return new Informer<XenDomain>(new KubeClient(kubeConfig(), { metrics: m }), resources.xenDomains, {
      fieldSelector: `status.host=x${i}`,
      logger: log,
      metrics: m,
    });
  });
  for (const w of idle) w.start();
  await Promise.all(idle.map((w) => w.synced()));
  const metrics = new SdkMetrics();
  const watcher = new Informer<XenDomain>(new KubeClient(kubeConfig(), { metrics }), resources.xenDomains, {
    logger: log,
    metrics,
  });
  const created = new Map<string, number>();
  const running = new Map<string, number>();
  const bound = new Map<string, number>();
  watcher.addHandler((ev) => {
    const name = ev.obj.metadata.name ?? "";
    if (ev.obj.status?.host && !bound.has(name)) bound.set(name, performance.now());
    if (ev.obj.status?.phase === "Running" && !running.has(name)) running.set(name, performance.now());
  });
  watcher.start();
  await watcher.synced();
  try {
    if (!o.floor)
      await until(
        "hosts Ready",
        async () => (await client.list(resources.xenHosts)).items.length === o.hosts,
        120_000,
        500,
      );
    const metrics0 = (await cp.rawGet("/metrics", 120_000)).body;
    const before = apiRequestsBy(metrics0);
    const self0 = procSample();
    const [etcdPid, apiPid] = cp.pids();
    const cp0 = { etcd: procSample(etcdPid), api: procSample(apiPid) };
    const t0 = performance.now();
    const queue = Array.from({ length: o.domains }, (_, i) => i);
    const create = async (i: number) => {
      const name = `d${i}`;
      created.set(name, performance.now());
      await client.create(resources.xenDomains, {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenDomain",
        metadata: { name, namespace: "bench" },
        spec: { memory: "64Mi", vcpus: 1, boot: { kernel: "/boot/vmlinuz" } },
      });
      if (o.floor) await bindAndReport(client, name, `x${i % o.hosts}`);
    };
    if (o.rate > 0) {
      // Steady: the i-th create starts at t0 + i/rate, whatever the others are doing.
      const inflight: Promise<void>[] = [];
      for (const i of queue) {
        const due = t0 + (i * 1000) / o.rate;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        inflight.push(create(i));
      }
      await Promise.all(inflight);
    } else {
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          for (let i = queue.shift(); i !== undefined; i = queue.shift()) await create(i);
        }),
      );
    }
    const createdIn = (performance.now() - t0) / 1000;
    // Past the timeout the run ends with what ran: the numbers say how far it got.
    const allRan = await until("all running", async () => running.size >= o.domains, o.timeoutS * 1000, 250).then(
      () => true,
      () => false,
    );
    const endS = (performance.now() - t0) / 1000;
    const allRunningS = allRan ? (Math.max(...running.values()) - t0) / 1000 : undefined;
    // An API server still working through a burst answers slowly: wait for it.
    const metrics1 = (await cp.rawGet("/metrics", 120_000)).body;
    const after = apiRequestsBy(metrics1);
    // Watches the API server closed because their client fell behind (each comes back as a new WATCH).
    const TERMINATED = "apiserver_terminated_watchers_total";
    const terminatedWatchers = counterSum(metrics1, TERMINATED) - counterSum(metrics0, TERMINATED);
    const requests = apiRequestsDelta(before, after, o.domains);
    // A domain that never ran counts as slower than any that did (its latency is past the run's end).
    const lat = [...created].map(([name, t]) => ((running.get(name) ?? Number.POSITIVE_INFINITY) - t) / 1000);
    const toBound = [...created].map(([name, t]) => ((bound.get(name) ?? Number.NaN) - t) / 1000);
    const boundToRunning = [...created].map(
      ([name]) => ((running.get(name) ?? Number.NaN) - (bound.get(name) ?? Number.NaN)) / 1000,
    );
    // Infinity for domains that never ran: JSON writes it as null, the report as "did not run".
    const pcts = (v: number[]) => {
      const w = v.map((x) => (Number.isNaN(x) ? Number.POSITIVE_INFINITY : x));
      return { p50: percentile(w, 50), p95: percentile(w, 95), p99: percentile(w, 99) };
    };
    const opStat = op ? procSample(op.pid) : undefined;
    const self1 = procSample();
    const cp1 = { etcd: procSample(etcdPid), api: procSample(apiPid) };
    return {
      ...o,
      createdInS: createdIn,
      allRunningS,
      ran: running.size,
      endS,
      latencyS: { ...pcts(lat), max: Math.max(...lat) },
      // Where the time goes: the scheduler's part (create to bound) and the agent's (bound to Running).
      scheduledS: pcts(toBound),
      startedS: pcts(boundToRunning),
      apiRequestsPerDomain: requests.reduce((sum, r) => sum + r.perDomain, 0),
      apiRequestsByKind: requests,
      terminatedWatchers,
      operator: opStat && {
        rssMiB: opStat.rssMiB,
        peakRssMiB: opStat.peakRssMiB,
        cpuSeconds: opStat.cpuSeconds,
        nodeOptions: nodeOptions.join(" "),
      },
      agentsProcess: { rssMiB: self1.rssMiB, cpuSeconds: self1.cpuSeconds - self0.cpuSeconds },
      apiServer: { rssMiB: cp1.api.rssMiB, cpuSeconds: cp1.api.cpuSeconds - cp0.api.cpuSeconds },
      etcd: { rssMiB: cp1.etcd.rssMiB, cpuSeconds: cp1.etcd.cpuSeconds - cp0.etcd.cpuSeconds },
      latencies: lat.filter(Number.isFinite),
      // The floor's idle watches: how many domains each one's selection holds at the end.
      ...(o.floor ? { floorWatchesHeld: idle.map((w) => w.size) } : {}),
    };
  } finally {
    await watcher.stop();
    await Promise.all(idle.map((w) => w.stop()));
    await op?.stop();
    await fleet?.stop();
    await cp.stop();
  }
}
