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

// Watches the API server closed because their client fell behind (each comes back as a new WATCH).
const TERMINATED = "apiserver_terminated_watchers_total";
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
  /**
   * Creates per second of each step, instead of `rate`: the domains are split evenly between the
   * steps, and a step starts once every domain of the one before runs. Each step is measured on
   * its own (latency, cores busy), after the idle fleet's cost (`idleS` seconds to settle, as many
   * to measure), to find the highest rate the machine sustains at this size.
   */
  stepped?: { rates: number[]; idleS: number };
}

/** One step of a stepped run (ScaleOptions.stepped). */
export interface ScaleStep {
  rate: number;
  domains: number;
  /** Domains of this step running when it ended (all of them unless the run timed out). */
  ran: number;
  latencyS: { p50: number; p95: number; p99: number };
  scheduledS: { p50: number; p95: number; p99: number };
  startedS: { p50: number; p95: number; p99: number };
  /** From the step's first create to its last domain running (or the timeout). */
  wallS: number;
  /**
   * CPU seconds of the API server, etcd, the operator and the agents' process, over the time from
   * the step's first create until the benchmark saw all its domains running.
   */
  coresBusy: number;
  apiServerCpuMsPerDomain: number;
  /** Watches the API server closed during the step because they fell behind. */
  terminatedWatchers: number;
  /** Every request the API server served during the step, divided by the step's domains. */
  apiRequestsPerDomain: number;
}

/** Every kind's requests per domain, summed. */
const totalPerDomain = (kinds: Array<{ perDomain: number }>) => kinds.reduce((sum, r) => sum + r.perDomain, 0);

/**
 * Percentiles; NaN (never bound) and Infinity (never ran) count as slower than any that did (JSON
 * writes Infinity as null, the report as "did not run").
 */
function pcts(v: number[]) {
  const w = v.map((x) => (Number.isNaN(x) ? Number.POSITIVE_INFINITY : x));
  return { p50: percentile(w, 50), p95: percentile(w, 95), p99: percentile(w, 99) };
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
          ...(fleet ? ["--migration-ca-cert", fleet.ca.certFile, "--migration-ca-key", fleet.ca.keyFile] : []),
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
  // Seconds from create to Running, to bound (the scheduler's part) and bound to Running (the agent's).
  // A domain that never ran counts as slower than any that did (Infinity; NaN where a time is missing).
  const intervals = (names: string[]) => {
    const at = (m: Map<string, number>, x: string) => m.get(x) ?? Number.NaN;
    return {
      toRunning: names.map((x) => ((running.get(x) ?? Number.POSITIVE_INFINITY) - at(created, x)) / 1000),
      toBound: names.map((x) => (at(bound, x) - at(created, x)) / 1000),
      boundToRunning: names.map((x) => (at(running, x) - at(bound, x)) / 1000),
    };
  };
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
    const [etcdPid, apiPid] = cp.pids();
    // Every process's CPU seconds so far: the API server, etcd, the operator, the agents' process.
    const cpuBy = () => ({
      apiServer: procSample(apiPid).cpuSeconds,
      etcd: procSample(etcdPid).cpuSeconds,
      operator: op ? procSample(op.pid).cpuSeconds : 0,
      agents: procSample().cpuSeconds,
    });
    const cpuNow = () => Object.values(cpuBy()).reduce((a, b) => a + b, 0);
    const steps: ScaleStep[] = [];
    let idleFleet:
      | { cores: number; by: ReturnType<typeof cpuBy>; requestsPerS: Array<{ key: string; perDomain: number }> }
      | undefined;
    if (o.stepped) {
      // What the idle fleet costs (Lease renewals, host reports) before any domain exists, by process,
      // once its start has settled (each agent's Lease acquisition and first reports): idleS each.
      const idleMs = o.stepped.idleS * 1000;
      await new Promise((r) => setTimeout(r, idleMs));
      const [c, t] = [cpuBy(), performance.now()];
      const m = apiRequestsBy((await cp.rawGet("/metrics", 120_000)).body);
      await new Promise((r) => setTimeout(r, idleMs));
      const wall = (performance.now() - t) / 1000;
      const c1 = cpuBy();
      const rate = (k: keyof typeof c) => (c1[k] - c[k]) / wall;
      const by = {
        apiServer: rate("apiServer"),
        etcd: rate("etcd"),
        operator: rate("operator"),
        agents: rate("agents"),
      };
      idleFleet = {
        cores: Object.values(by).reduce((a, b) => a + b, 0),
        by,
        // "perDomain" of apiRequestsDelta here is per second of the idle wait.
        requestsPerS: apiRequestsDelta(m, apiRequestsBy((await cp.rawGet("/metrics", 120_000)).body), wall),
      };
    }
    const metrics0 = (await cp.rawGet("/metrics", 120_000)).body;
    const before = apiRequestsBy(metrics0);
    const self0 = procSample();
    const cp0 = { etcd: procSample(etcdPid), api: procSample(apiPid) };
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
    // Steady: the k-th create starts at `from` + k/rate, whatever the others are doing.
    const createSteady = async (indices: number[], rate: number, from: number) => {
      const inflight: Promise<void>[] = [];
      for (const [k, i] of indices.entries()) {
        const wait = from + (k * 1000) / rate - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        inflight.push(create(i));
      }
      await Promise.all(inflight);
    };
    const t0 = performance.now();
    if (o.stepped) {
      const per = Math.floor(o.domains / o.stepped.rates.length);
      for (const [n, rate] of o.stepped.rates.entries()) {
        const indices = Array.from({ length: per }, (_, k) => n * per + k);
        const m0 = (await cp.rawGet("/metrics", 120_000)).body;
        const [c, a, t] = [cpuNow(), procSample(apiPid).cpuSeconds, performance.now()];
        await createSteady(indices, rate, t);
        const names = indices.map((i) => `d${i}`);
        const budget = Math.max(1000, o.timeoutS * 1000 - (performance.now() - t0));
        await until("the step's domains running", async () => names.every((x) => running.has(x)), budget, 100).catch(
          () => {},
        );
        const last = Math.max(...names.map((x) => running.get(x) ?? performance.now()));
        const wallS = (last - t) / 1000;
        // CPU first: reading /metrics again costs the API server some.
        const coresBusy = (cpuNow() - c) / ((performance.now() - t) / 1000);
        const apiServerCpuMsPerDomain = ((procSample(apiPid).cpuSeconds - a) * 1000) / per;
        const m1 = (await cp.rawGet("/metrics", 120_000)).body;
        const iv = intervals(names);
        steps.push({
          rate,
          domains: per,
          ran: names.filter((x) => running.has(x)).length,
          latencyS: pcts(iv.toRunning),
          scheduledS: pcts(iv.toBound),
          startedS: pcts(iv.boundToRunning),
          wallS,
          coresBusy,
          apiServerCpuMsPerDomain,
          terminatedWatchers: counterSum(m1, TERMINATED) - counterSum(m0, TERMINATED),
          apiRequestsPerDomain: totalPerDomain(apiRequestsDelta(apiRequestsBy(m0), apiRequestsBy(m1), per)),
        });
        log.info({ step: steps.at(-1) }, "step done");
        if (performance.now() - t0 > o.timeoutS * 1000) break;
      }
    } else if (o.rate > 0)
      await createSteady(
        Array.from({ length: o.domains }, (_, i) => i),
        o.rate,
        t0,
      );
    else {
      const queue = Array.from({ length: o.domains }, (_, i) => i);
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
    const terminatedWatchers = counterSum(metrics1, TERMINATED) - counterSum(metrics0, TERMINATED);
    const requests = apiRequestsDelta(before, after, o.domains);
    const { toRunning: lat, toBound, boundToRunning } = intervals([...created.keys()]);
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
      apiRequestsPerDomain: totalPerDomain(requests),
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
      ...(o.stepped ? { steps, idleFleet } : {}),
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
