// Who writes which status field, read back from the API server's
// managedFields after the system has done its work (binding, running,
// unschedulable, a live migration, a drain by restart, a policy, a
// balancer pass): every status field has only the writers the table in
// docs/architecture.md gives it. A new writer of a field fails here.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { resources } from "@kubexen/crds";
import { type ControlPlane, type SimFleet, startKubexenControlPlane, startSimFleet, until } from "@kubexen/e2e";
import { createLogger, KubeClient, type KubeObject, type Resource, SdkMetrics } from "@kubexen/sdk";
import { Operator } from "../src/index.ts";

const log = createLogger("ownership-test", process.env.LOG_LEVEL ?? "warn");
const NS = "own";

/** Field manager names: the agents' own carry their host; a migration report, its condition too. */
const AGENT_OF_HOST = /^kubexen-agent-[a-z0-9.-]+$/;
const report = (condition: string) => new RegExp(`^kubexen-agent-[a-z0-9.-]+-${condition}$`);
const SOURCE = report("SourceDone");
const PROGRESS = /^kubexen-agent-[a-z0-9.-]+-progress$/;
type Writer = string | RegExp;

/** The table of docs/architecture.md: each kind's status fields and who may write them. */
const OWNERS: Record<string, Record<string, Writer[]>> = {
  XenDomain: {
    host: ["kubexen-scheduler"],
    uuid: ["kubexen-scheduler"],
    interfaces: ["kubexen-scheduler"],
    unschedulableReasons: ["kubexen-scheduler"],
    // The known exceptions the table states: four writers of phase.
    phase: ["kubexen-agent", "kubexen-scheduler", "kubexen-ha", "kubexen-release"],
    state: ["kubexen-agent", "kubexen-ha", "kubexen-release"],
    domid: ["kubexen-agent"],
    memoryMiB: ["kubexen-agent"],
    vcpus: ["kubexen-agent"],
    cpuTimeSeconds: ["kubexen-agent"],
    migratable: ["kubexen-agent"],
    savedImage: ["kubexen-agent"],
    restartCount: ["kubexen-agent"],
    lastRestartTime: ["kubexen-agent"],
    nextRestartTime: ["kubexen-agent"],
    startTime: ["kubexen-agent"],
    eviction: ["kubexen-maintenance"],
    // Conditions are a map by type: each type's writer is checked below.
    conditions: ["kubexen-agent", "kubexen-scheduler"],
    observedGeneration: ["kubexen-agent"],
  },
  XenHost: {
    conditions: [AGENT_OF_HOST, "kubexen-host-health"],
    "*": [AGENT_OF_HOST],
  },
  XenMigration: {
    conditions: [
      report("TargetReady"),
      report("TargetRunning"),
      SOURCE,
      "kubexen-migration",
      "kubexen-migration-abort",
    ],
    // The source's progress and statistics, with its report.
    bytesTransferred: [SOURCE, PROGRESS],
    rounds: [SOURCE, PROGRESS],
    dirtyPages: [SOURCE, PROGRESS],
    downtimeMs: [SOURCE],
    totalTimeMs: [SOURCE],
    progressTime: [SOURCE, PROGRESS],
    throttlePercent: [SOURCE, PROGRESS],
    "*": ["kubexen-migration"],
  },
  XenMaintenance: { "*": ["kubexen-maintenance", "kubexen-maintenance-record"] },
  XenBalancer: { "*": ["kubexen-balancer"] },
  XenMigrationPolicy: { "*": ["kubexen-migration-policy"] },
};

/** Condition types each writer may set, per kind. */
const CONDITION_OWNERS: Record<string, Record<string, Writer[]>> = {
  XenDomain: {
    Scheduled: ["kubexen-scheduler"],
    "*": ["kubexen-agent"],
  },
  XenHost: { Fenced: ["kubexen-host-health"], Ready: [AGENT_OF_HOST, "kubexen-host-health"], "*": [AGENT_OF_HOST] },
  XenMigration: {
    AbortRequested: ["kubexen-migration-abort"],
    TargetReady: [report("TargetReady")],
    TargetRunning: [report("TargetRunning")],
    SourceDone: [SOURCE],
    "*": ["kubexen-migration"],
  },
};

interface ManagedField {
  manager: string;
  subresource?: string;
  fieldsV1?: Record<string, unknown>;
}

/** Each status field (and condition type) a managedFields entry owns, with its manager. */
function statusWrites(obj: KubeObject): Array<{ manager: string; field: string; condition?: string }> {
  const out: Array<{ manager: string; field: string; condition?: string }> = [];
  for (const mf of (obj.metadata.managedFields ?? []) as ManagedField[]) {
    const status = mf.fieldsV1?.["f:status"] as Record<string, unknown> | undefined;
    if (!status) continue;
    for (const [k, v] of Object.entries(status)) {
      if (!k.startsWith("f:")) continue;
      const field = k.slice(2);
      out.push({ manager: mf.manager, field });
      if (field === "conditions")
        for (const ck of Object.keys(v as object)) {
          const m = /^k:\{"type":"([^"]+)"\}$/.exec(ck);
          if (m?.[1]) out.push({ manager: mf.manager, field, condition: m[1] });
        }
    }
  }
  return out;
}

const allowed = (writers: Writer[] | undefined, manager: string) =>
  !!writers?.some((w) => (typeof w === "string" ? w === manager : w.test(manager)));

describe("status ownership", () => {
  let cp: ControlPlane;
  let fleet: SimFleet;
  let op: Operator;
  let client: KubeClient;

  before(async () => {
    cp = await startKubexenControlPlane([NS]);
    client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
    fleet = await startSimFleet(
      cp,
      ["o1", "o2", "o3"].map((name) => ({ name, memoryMiB: 4096 })),
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

  it("gives every status field only the writers of docs/architecture.md's table", async () => {
    const domain = (name: string, spec: Record<string, unknown> = {}) =>
      client.create(resources.xenDomains, {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenDomain",
        metadata: { name, namespace: NS },
        spec: { memory: "128Mi", boot: { kernel: "/boot/vmlinuz" }, ...spec },
      });
    await domain("a");
    await domain("b", { evictionStrategy: "Restart" });
    await domain("c");
    await domain("nowhere", { hostSelector: { none: "matches" } });
    await client.create(resources.xenMigrationPolicies, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenMigrationPolicy",
      metadata: { name: "default" },
      spec: {},
    });
    await client.create(resources.xenBalancers, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenBalancer",
      metadata: { name: "default" },
      spec: { mode: "Recommend", intervalSeconds: 10 },
    });
    const phase = async (n: string) =>
      (await client.get<KubeObject & { status?: { phase?: string; host?: string } }>(resources.xenDomains, n, NS))
        .status;
    await until("all placed and running", async () =>
      (await Promise.all(["a", "b", "c"].map(phase))).every((s) => s?.phase === "Running"),
    );
    await until("nowhere unschedulable", async () => (await phase("nowhere"))?.phase === "Unschedulable");
    await client.create(resources.xenMigrations, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenMigration",
      metadata: { name: "move-a", namespace: NS },
      spec: { domain: "a" },
    });
    await until(
      "migrated",
      async () =>
        (await client.get<KubeObject & { status?: { phase?: string } }>(resources.xenMigrations, "move-a", NS)).status
          ?.phase === "Succeeded",
      60_000,
    );
    // Drain b's host: b restarts elsewhere (eviction, release), whatever else is there moves.
    const bHost = (await phase("b"))?.host ?? "";
    await client.create(resources.xenMaintenances, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenMaintenance",
      metadata: { name: "drain" },
      spec: { host: bHost },
    });
    await until(
      "drained",
      async () =>
        (await client.get<KubeObject & { status?: { phase?: string } }>(resources.xenMaintenances, "drain")).status
          ?.phase === "Drained",
      90_000,
    );
    await until("b running elsewhere", async () => {
      const s = await phase("b");
      return s?.phase === "Running" && s.host !== bHost;
    });

    const kinds: Array<[string, Resource, string | undefined]> = [
      ["XenDomain", resources.xenDomains, NS],
      ["XenHost", resources.xenHosts, undefined],
      ["XenMigration", resources.xenMigrations, NS],
      ["XenMaintenance", resources.xenMaintenances, undefined],
      ["XenBalancer", resources.xenBalancers, undefined],
      ["XenMigrationPolicy", resources.xenMigrationPolicies, undefined],
    ];
    const seen = new Set<string>();
    const wrong: string[] = [];
    for (const [kind, r, namespace] of kinds) {
      const items = (await client.listAll<KubeObject>(r, namespace ? { namespace } : {})).items;
      assert.ok(items.length > 0, `some ${kind} to check`);
      for (const obj of items)
        for (const w of statusWrites(obj)) {
          seen.add(`${kind}.${w.field}${w.condition ? `[${w.condition}]` : ""}`);
          const table = OWNERS[kind] ?? {};
          const ok = w.condition
            ? allowed(
                CONDITION_OWNERS[kind]?.[w.condition] ??
                  CONDITION_OWNERS[kind]?.["*"] ??
                  table.conditions ??
                  table["*"],
                w.manager,
              )
            : allowed(table[w.field] ?? table["*"], w.manager);
          if (!ok)
            wrong.push(
              `${kind} ${obj.metadata.name}: status.${w.field}${w.condition ? ` condition ${w.condition}` : ""} written by ${w.manager}`,
            );
        }
    }
    assert.deepEqual(wrong, []);
    // The scenario reached the fields it is meant to watch.
    for (const f of [
      "XenDomain.host",
      "XenDomain.phase",

      "XenDomain.unschedulableReasons",
      "XenMigration.phase",
      "XenMaintenance.phase",
      "XenMigrationPolicy.observedGeneration",
    ])
      assert.ok(seen.has(f), `the scenario wrote ${f}`);
  });
});
