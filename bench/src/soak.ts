// Benchmark 6: a soak under chaos. Live migrations on sim hosts whose agents
// run as processes (each sim's state in its own directory, so its domains
// outlive the agent), the operator as a process, while the harness SIGKILLs
// the operator and the agents at random moments, kills and restarts the API
// server and etcd, and cuts hosts' path to the API server. The sims' own view
// (their state files) is checked all along: never two running copies; and at
// the end: every migration ended, every domain runs on exactly its host, no
// copy, Lease or migration reference left behind.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hostLeaseName, resources, type XenDomain, type XenMigration } from "@kubexen/crds";
import {
  type ControlPlane,
  freePort,
  issueHostCert,
  type KeyPair,
  makeCa,
  SimStateRecorder,
  type Supervised,
  startKubexenControlPlane,
  startSupervised,
  TcpProxy,
  until,
} from "@kubexen/e2e";
import { createLogger, Informer, KubeClient, type KubeObject, SdkMetrics } from "@kubexen/sdk";
import {
  CHAOS_KINDS,
  type ChaosAction,
  type ChaosKind,
  type ChaosLimits,
  groupReasons,
  nextChaos,
  seededRandom,
  soakViolations,
} from "./soak-plan.ts";

const log = createLogger("bench-soak", process.env.BENCH_LOG_LEVEL ?? "info");
const OPERATOR = join(import.meta.dirname, "../../operator/src/main.ts");
const AGENT = join(import.meta.dirname, "../../node-agent/src/main.ts");
const NS = "soak";
const AGENT_NS = "kubexen-system";
const LEASES = { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SoakOptions {
  hosts: number;
  domains: number;
  migrations: number;
  /** XenMigrations not yet ended at any time (more than the cluster's 5 slots keeps them busy). */
  window: number;
  memoryMiB: number;
  /** The sims' link in real time: transfers take memoryMiB / linkMiBps seconds, so kills land mid-transfer. */
  linkMiBps: number;
  chaos: ChaosLimits;
  seed: number;
  /** Migrations and chaos, at most. */
  timeoutS: number;
  /** After the last action, how long the fleet may take to reach the end state. */
  settleS: number;
}

/** What an agent process is started with; everything it names the harness made. */
export interface AgentSpec {
  host: string;
  kubeconfig: string;
  stateDir: string;
  migrationPort: number;
  /** The migration CA (the agent verifies its peers with it) and this host's certificate. */
  ca: KeyPair;
  cert: KeyPair;
  simMemoryMiB: number;
  linkMiBps: number;
  logFile: string;
}

/**
 * The one place an agent process is started. It holds the CA's certificate and a certificate
 * issued ahead (the harness's agents authenticate as the admin, whom the CSR signer refuses);
 * the operator alone holds the CA's key and signs each transfer's token. Each agent keeps the
 * tokens it accepted in its own --cert-dir.
 */
export function startAgent(a: AgentSpec): Supervised {
  return startSupervised(
    `agent-${a.host}`,
    process.execPath,
    [
      AGENT,
      ...["--host", a.host, "--driver", "sim", "--kubeconfig", a.kubeconfig, "--namespace", AGENT_NS],
      ...["--sim-state-dir", a.stateDir, "--sim-memory-mib", String(a.simMemoryMiB)],
      ...["--sim-link-mibps", String(a.linkMiBps), "--sim-time-scale", "1"],
      ...["--migration-endpoint", `127.0.0.1:${a.migrationPort}`, "--migration-listen", `127.0.0.1:${a.migrationPort}`],
      ...["--tls-ca", a.ca.certFile, "--tls-cert", a.cert.certFile, "--tls-key", a.cert.keyFile],
      ...["--cert-dir", join(a.stateDir, `pki-${a.host}`)],
      // No watchdog: a cut or an API outage must not reset a host (cuts stay shorter than the Lease).
      ...["--fencing", "off", "--allowed-path-root", "/boot", "--allowed-path-root", "/var/lib/xen/images"],
    ],
    { logFile: a.logFile, env: { ...process.env, LOG_LEVEL: process.env.BENCH_AGENT_LOG_LEVEL ?? "warn" } },
  );
}

/** The operator as a process, holding the migration CA. */
function startOperator(cp: ControlPlane, ca: KeyPair, logFile: string): Supervised {
  return startSupervised(
    "operator",
    process.execPath,
    [
      OPERATOR,
      ...["--kubeconfig", cp.tokenKubeconfigPath, "--no-leader-elect", "--metrics-port", "0"],
      ...["--migration-ca-cert", ca.certFile, "--migration-ca-key", ca.keyFile],
    ],
    { logFile, env: { ...process.env, LOG_LEVEL: process.env.BENCH_OPERATOR_LOG_LEVEL ?? "warn" } },
  );
}

/**
 * A process kept running as kubelet keeps a pod's: one that exits by itself (the operator exits
 * when it cannot reach the API server at its start) is started again after a second, and counted.
 */
class KeptRunning {
  proc: Supervised;
  /** Exits the harness did not cause. */
  selfExits = 0;
  private killing = false;
  private stopped = false;
  private readonly name: string;
  private readonly start: () => Supervised;

  constructor(name: string, start: () => Supervised) {
    this.name = name;
    this.start = start;
    this.proc = this.launch();
  }

  private launch(): Supervised {
    const p = this.start();
    void p.exited.then((code) => {
      if (this.proc !== p || this.killing || this.stopped) return;
      this.selfExits++;
      log.warn({ process: this.name, code }, "soak: exited by itself; starting it again");
      setTimeout(() => {
        if (!this.stopped && this.proc === p) this.proc = this.launch();
      }, 1000);
    });
    return p;
  }

  /** SIGKILL, down for downMs, started again. */
  async crash(downMs: number): Promise<void> {
    this.killing = true;
    await this.proc.kill();
    await sleep(downMs);
    this.killing = false;
    if (!this.stopped) this.proc = this.launch();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.proc.stop();
  }
}

/** Retries a call through API outages (the harness's own path to the API server is never cut). */
async function retry<T>(what: string, fn: () => Promise<T>, timeoutMs = 180_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (status === 409 || Date.now() > end) throw err;
      log.debug({ what, err: (err as Error).message }, "retrying");
      await sleep(500);
    }
  }
}

export interface SoakResult extends Omit<SoakOptions, "chaos"> {
  chaosLimits: ChaosLimits;
  durationS: number;
  /** From the first XenMigration's creation to the last one's end. */
  migrationsS: number;
  succeeded: number;
  failed: number;
  failureReasons: Array<{ reason: string; count: number }>;
  chaos: Record<ChaosKind, number>;
  /** How long each API server and etcd restart left the API unanswered, in s. */
  apiDownS: number[];
  overlaps: string[];
  /** Consistent snapshots of every sim's state the invariant checker took, and reads it retried. */
  snapshots: number;
  tornReads: number;
  /** Domains that booted more than once (restarted rather than live-migrated). */
  restarted: number;
  /** Times a process exited by itself and was started again (as kubelet would). */
  selfExits: { operator: number; agents: number };
  violations: string[];
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const t0 = performance.now();
  const cp = await startKubexenControlPlane([NS]);
  const dir = join(cp.dir, "soak");
  mkdirSync(dir, { recursive: true });
  const client = new KubeClient(cp.kubeConfig({ token: true }), { metrics: new SdkMetrics() });
  // The fleet's migration CA: the operator holds its key and signs with it.
  const ca = await makeCa(cp.dir, "migration-ca");
  const hosts = Array.from({ length: o.hosts }, (_, i) => `soak-h${i}`);
  const tokenKubeconfig = readFileSync(cp.tokenKubeconfigPath, "utf8");
  const proxies = new Map<string, TcpProxy>();
  const specs = new Map<string, AgentSpec>();
  for (const host of hosts) {
    const proxy = new TcpProxy(cp.port);
    await proxy.start();
    proxies.set(host, proxy);
    // The agent reaches the API server only through its proxy, which a cut breaks.
    const kubeconfig = join(dir, `${host}.kubeconfig`);
    writeFileSync(kubeconfig, tokenKubeconfig.replaceAll(cp.server, `https://127.0.0.1:${proxy.port}`));
    specs.set(host, {
      host,
      kubeconfig,
      stateDir: join(dir, "sim", host),
      migrationPort: await freePort(),
      ca,
      cert: await issueHostCert(cp.dir, ca, host),
      simMemoryMiB: 2048 + Math.ceil((o.domains * o.memoryMiB * 2) / o.hosts),
      linkMiBps: o.linkMiBps,
      logFile: join(dir, `agent-${host}.log`),
    });
  }
  for (const s of specs.values()) mkdirSync(s.stateDir, { recursive: true });
  const agents = new Map([...specs].map(([h, s]) => [h, new KeptRunning(`agent-${h}`, () => startAgent(s))]));
  const operatorLog = join(dir, "operator.log");
  const operator = new KeptRunning("operator", () => startOperator(cp, ca, operatorLog));
  const recorder = new SimStateRecorder(new Map([...specs].map(([h, s]) => [h, join(s.stateDir, `${h}.json`)])));
  const ended = new Map<string, number>();
  const informer = new Informer<XenMigration>(client, resources.xenMigrations, {
    namespace: NS,
    logger: log,
    metrics: new SdkMetrics(),
    backoff: { initialMs: 300, maxMs: 2000 },
  });
  informer.addHandler((ev) => {
    const phase = ev.obj.status?.phase;
    const name = ev.obj.metadata.name ?? "";
    if ((phase === "Succeeded" || phase === "Failed" || phase === "Aborted") && !ended.has(name))
      ended.set(name, performance.now());
  });
  const chaos = Object.fromEntries(CHAOS_KINDS.map((k) => [k, 0])) as Record<ChaosKind, number>;
  const apiDownS: number[] = [];
  const deadline = Date.now() + o.timeoutS * 1000;
  let stopChaos = false;
  try {
    await until(
      "every host registered",
      async () => (await client.list(resources.xenHosts)).items.length === o.hosts,
      120_000,
      500,
    );
    for (let i = 0; i < o.domains; i++)
      await client.create(resources.xenDomains, {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenDomain",
        metadata: { name: `d${i}`, namespace: NS },
        spec: { memory: `${o.memoryMiB}Mi`, boot: { kernel: "/boot/vmlinuz" } },
      });
    const domains = async () => (await client.listAll<XenDomain>(resources.xenDomains, { namespace: NS })).items;
    await until(
      "every domain running",
      async () => (await domains()).filter((d) => d.status?.phase === "Running").length === o.domains,
      120_000,
      500,
    );
    informer.start();
    await informer.synced();
    log.info({ hosts: o.hosts, domains: o.domains, migrations: o.migrations }, "soak: fleet up, chaos begins");

    const rand = seededRandom(o.seed);
    const runChaos = async () => {
      for (
        let a = nextChaos(chaos, o.chaos, hosts, rand);
        a && !stopChaos;
        a = nextChaos(chaos, o.chaos, hosts, rand)
      ) {
        await sleep(a.gapMs);
        if (stopChaos) return;
        await act(a);
        chaos[a.kind]++;
        log.info({ action: a, done: chaos }, "soak: chaos");
      }
    };
    const act = async (a: ChaosAction) => {
      switch (a.kind) {
        case "operator":
          return operator.crash(a.downMs);
        case "agent":
          return agents.get(a.host)?.crash(a.downMs);
        case "api": {
          const down = performance.now();
          await cp.stopApiServer({ kill: true });
          await cp.stopEtcd({ kill: true });
          await sleep(a.downMs);
          await cp.startEtcd();
          await cp.startApiServer();
          apiDownS.push((performance.now() - down) / 1000);
          return;
        }
        case "cut":
          proxies.get(a.host)?.cut(a.ms);
          return;
      }
    };
    const chaosDone = runChaos();

    // Migrations: at most `window` not yet ended; each for a domain with none under way.
    const tMigrations = performance.now();
    const active = new Map<string, string>();
    let created = 0;
    let next = 0;
    while ((created < o.migrations || active.size > 0) && Date.now() < deadline) {
      for (const [d, m] of active) if (ended.has(m)) active.delete(d);
      while (created < o.migrations && active.size < Math.min(o.window, o.domains)) {
        let d = `d${next++ % o.domains}`;
        while (active.has(d)) d = `d${next++ % o.domains}`;
        const name = `m${created}`;
        await retry(`create ${name}`, () =>
          client.create(resources.xenMigrations, {
            apiVersion: "kubexen.io/v1alpha1",
            kind: "XenMigration",
            metadata: { name, namespace: NS },
            spec: { domain: d },
          }),
        ).catch((err) => {
          // Created before an outage cut the answer off: it exists.
          if ((err as { status?: number }).status !== 409) throw err;
        });
        active.set(d, name);
        created++;
      }
      await sleep(200);
    }
    const migrationsS = (Math.max(tMigrations, ...ended.values()) - tMigrations) / 1000;
    log.info({ created, ended: ended.size, chaos }, "soak: migrations ended, finishing chaos");
    await chaosDone;
    stopChaos = true;

    // Settle: the fleet is left alone until the end state holds, or the deadline passes.
    const end = async () => {
      recorder.check();
      const [ms, ds, leases, hostObjs] = await Promise.all([
        client.listAll<XenMigration>(resources.xenMigrations, { namespace: NS }),
        domains(),
        client.listAll<KubeObject>(LEASES, { namespace: AGENT_NS }),
        client.list(resources.xenHosts),
      ]);
      const view = recorder.view;
      return {
        migrations: ms.items.map((m) => ({
          name: m.metadata.name ?? "",
          phase: m.status?.phase,
          failureReason: m.status?.failureReason,
        })),
        expectedMigrations: o.migrations,
        domains: ds.map((d) => ({
          name: d.metadata.name ?? "",
          phase: d.status?.phase,
          host: d.status?.host,
          uuid: d.status?.uuid,
          migrating: d.status?.migration?.current?.name,
        })),
        hosts: hostObjs.items.map((h) => h.metadata.name ?? ""),
        leases: leases.items.map((l) => l.metadata.name ?? ""),
        leaseOf: hostLeaseName,
        view,
        boots: (uuid: string) => recorder.boots(uuid),
        overlaps: recorder.overlaps,
      };
    };
    let violations: string[] = ["not checked"];
    const settleEnd = Date.now() + o.settleS * 1000;
    while (Date.now() < settleEnd) {
      try {
        violations = soakViolations(await end());
      } catch (err) {
        violations = [`the end state could not be read: ${(err as Error).message}`];
      }
      if (violations.length === 0) break;
      await sleep(1000);
    }
    const final = await retry("the end state", end);
    const reasons = final.migrations.filter((m) => m.phase === "Failed").map((m) => m.failureReason);
    const result: SoakResult = {
      hosts: o.hosts,
      domains: o.domains,
      migrations: o.migrations,
      window: o.window,
      memoryMiB: o.memoryMiB,
      linkMiBps: o.linkMiBps,
      seed: o.seed,
      timeoutS: o.timeoutS,
      settleS: o.settleS,
      chaosLimits: o.chaos,
      durationS: (performance.now() - t0) / 1000,
      migrationsS,
      succeeded: final.migrations.filter((m) => m.phase === "Succeeded").length,
      failed: reasons.length,
      failureReasons: groupReasons(reasons),
      chaos,
      apiDownS,
      overlaps: [...recorder.overlaps],
      snapshots: recorder.snapshots,
      tornReads: recorder.torn,
      restarted: final.domains.filter((d) => recorder.boots(d.uuid ?? "") > 1).length,
      selfExits: {
        operator: operator.selfExits,
        agents: [...agents.values()].reduce((n, a) => n + a.selfExits, 0),
      },
      violations: soakViolations(final),
    };
    log.info({ ...result, chaosLimits: undefined }, "soak: done");
    return result;
  } finally {
    stopChaos = true;
    recorder.stop();
    await informer.stop();
    await operator.stop();
    for (const a of agents.values()) await a.stop();
    for (const p of proxies.values()) await p.stop();
    await cp.stop();
  }
}

/**
 * The soak's size: `full` is 1,000 migrations on 4 hosts and 24 domains; `small` what the test
 * suite runs. The chaos budget grows with the migrations (per 1,000: 30 operator kills, 30 agent
 * kills, 5 API server and etcd restarts, 20 cuts), at least one of each.
 */
export function soakOptions(size: "small" | "full", migrations?: number, seed?: number): SoakOptions {
  const n = migrations ?? (size === "full" ? 1000 : 20);
  const per = (k: number) => Math.max(1, Math.round((k * n) / 1000));
  const small = size === "small";
  return {
    hosts: small ? 3 : 4,
    domains: small ? 6 : 24,
    migrations: n,
    window: small ? 4 : 10,
    memoryMiB: 128,
    linkMiBps: 256,
    chaos: {
      budget: small
        ? { operator: 2, agent: 2, api: 1, cut: 2 }
        : { operator: per(30), agent: per(30), api: per(5), cut: per(20) },
      // Spread over the run: at about 1 s a migration, 1,000 take a quarter of an hour or more.
      gapMs: small ? [500, 2500] : [3000, 20_000],
      downMs: [0, 2000],
      cutMs: small ? [2000, 5000] : [2000, 15_000],
    },
    seed: seed ?? Math.floor(Math.random() * 2 ** 31),
    timeoutS: small ? 300 : 3 * 3600,
    settleS: small ? 60 : 180,
  };
}
