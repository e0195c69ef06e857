// HA with a real API server and sim hosts that fence themselves through
// their watchdogs: a host cut off from the control plane resets, and only
// after its fence window do its domains start elsewhere; a host without
// fencing keeps its domains bound until the administrator declares it out of
// service, and when it comes back its agent destroys the stale copies before
// it reports Ready.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { hostLeaseName, resources, type XenDomain, type XenHost } from "@kubexen/crds";
import {
  type ControlPlane,
  OverlapRecorder,
  type SimFleet,
  startKubexenControlPlane,
  startSimFleet,
  until,
} from "@kubexen/e2e";
import { createLogger, KubeClient, type KubeObject, SdkMetrics } from "@kubexen/sdk";
import { Operator } from "../src/index.ts";

const log = createLogger("ha-test", process.env.LOG_LEVEL ?? "warn");
const NS = "ha-test";
const FENCE = { fenceTimeoutMs: 2000, watchdogTimeoutMs: 1000 };
const MARGIN_MS = 1000;
// The domains here boot /boot/vmlinuz: the agents (fleet and restarted alike) allow /boot.
const AGENT = {
  logger: log,
  heartbeatIntervalMs: 500,
  leaseDurationSeconds: 2,
  reportIntervalMs: 500,
  allowedPathRoots: ["/boot"],
};
type Sim = NonNullable<ReturnType<SimFleet["sims"]["get"]>>;

describe("operator: HA after host failure", () => {
  let cp: ControlPlane;
  let client: KubeClient;
  let fleet: SimFleet;
  let loose: SimFleet;
  let op: Operator;
  let rec: OverlapRecorder;
  const xd = (name: string) => client.get<XenDomain>(resources.xenDomains, name, NS);
  const host = (name: string) => client.get<XenHost>(resources.xenHosts, name);
  const cordon = (name: string, unschedulable: boolean) =>
    client.mergePatch(resources.xenHosts, name, undefined, { spec: { unschedulable } });
  const domain = (name: string, runStrategy: string) =>
    client.create(resources.xenDomains, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenDomain",
      metadata: { name, namespace: NS },
      spec: { memory: "256Mi", runStrategy, boot: { kernel: "/boot/vmlinuz" } },
    });
  const condition = (h: XenHost, type: string) => h.status?.conditions?.find((c) => c.type === type);
  /** A new agent for a sim host with the fleet's settings, as after a restart or a return. */
  const newAgent = async (name: string, sim: Sim, fencing: boolean) => {
    const { NodeAgent, SimWatchdog } = await import("@kubexen/node-agent");
    return new NodeAgent({
      kubeConfig: cp.kubeConfig(),
      host: name,
      hypervisor: sim,
      ...AGENT,
      fencing: fencing ? { watchdog: new SimWatchdog(sim), ...FENCE } : undefined,
    });
  };

  before(async () => {
    cp = await startKubexenControlPlane([NS]);
    client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
    fleet = await startSimFleet(
      cp,
      ["h1", "h2", "h3"].map((name) => ({ name, memoryMiB: 8192 })),
      { ...AGENT, fencing: FENCE },
    );
    loose = await startSimFleet(cp, [{ name: "nofence", memoryMiB: 8192 }], AGENT);
    rec = new OverlapRecorder(new Map([...fleet.sims, ...loose.sims]));
    op = new Operator({
      kubeConfig: cp.kubeConfig(),
      migrationCa: fleet.migrationCa,
      leaderElection: false,
      logger: log,
      fenceMarginMs: MARGIN_MS,
    });
    await op.start();
    await until("hosts Ready", async () => {
      const hs = await client.list<XenHost>(resources.xenHosts);
      return hs.items.filter((h) => condition(h, "Ready")?.status === "True").length === 4;
    });
  });
  after(async () => {
    rec?.stop();
    await op?.stop();
    await fleet?.stop();
    await loose?.stop();
    await cp?.stop();
  });

  it("restarts a fenced host's domains elsewhere only after its fence window, never overlapping", async () => {
    for (const h of ["h2", "h3", "nofence"]) await cordon(h, true);
    const names = { a1: "Always", a2: "Always", a3: "Always", r1: "RerunOnFailure", m1: "Manual" };
    for (const [n, rs] of Object.entries(names)) await domain(n, rs);
    await until("all running on h1", async () => {
      for (const n of Object.keys(names)) {
        const d = await xd(n);
        if (d.status?.phase !== "Running" || d.status.host !== "h1") return false;
      }
      return true;
    });
    for (const h of ["h2", "h3"]) await cordon(h, false);
    const uuids = new Map<string, string>();
    for (const n of Object.keys(names)) uuids.set(n, (await xd(n)).status?.uuid ?? "");

    await fleet.agents.get("h1")?.partition();
    const h1 = fleet.sims.get("h1");
    await until("h1 reset by its watchdog", async () => h1?.watchdogResets === 1, 15_000);
    const lease = await client.get<KubeObject & { spec: { renewTime: string } }>(
      { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true },
      hostLeaseName("h1"),
      "kubexen-system",
    );
    const fenceAt = Date.parse(lease.spec.renewTime) + FENCE.fenceTimeoutMs + FENCE.watchdogTimeoutMs + MARGIN_MS;

    await until(
      "restartable domains running elsewhere",
      async () => {
        for (const n of ["a1", "a2", "a3", "r1"]) {
          const d = await xd(n);
          if (d.status?.phase !== "Running" || !["h2", "h3"].includes(d.status.host ?? "")) return false;
        }
        return true;
      },
      30_000,
    );
    const h1obj = await host("h1");
    assert.equal(condition(h1obj, "Fenced")?.status, "True");
    assert.equal(condition(h1obj, "Fenced")?.reason, "FenceWindowPassed");
    for (const n of ["a1", "a2", "a3", "r1"]) {
      const d = await xd(n);
      assert.equal(d.status?.uuid, uuids.get(n), `${n} keeps its UUID`);
      const restart = rec.starts.get(uuids.get(n) ?? "")?.find((s) => s.host !== "h1");
      assert.ok(restart, `${n} started on another host`);
      assert.ok(
        restart.at >= fenceAt,
        `${n} started ${fenceAt - restart.at} ms before the fence window ended: never before it`,
      );
    }
    const m1 = await xd("m1");
    assert.equal(m1.status?.host, "h1", "Manual is not restarted elsewhere");
    assert.equal(m1.status?.phase, "Failed");
    assert.deepEqual(rec.overlaps, []);
  });

  it("keeps a host without fencing bound until it is declared out of service; its agent destroys stale copies on return", async () => {
    await cordon("nofence", false);
    for (const h of ["h2", "h3"]) await cordon(h, true);
    await domain("nf", "Always");
    await until("nf on nofence", async () => {
      const d = await xd("nf");
      return d.status?.phase === "Running" && d.status.host === "nofence";
    });
    for (const h of ["h2", "h3"]) await cordon(h, false);
    const uuid = (await xd("nf")).status?.uuid ?? "";
    const sim = loose.sims.get("nofence");
    await loose.agents.get("nofence")?.halt(); // The agent dies; its domain keeps running.
    await until("heartbeat lost", async () => condition(await host("nofence"), "Ready")?.status === "False");
    await until(
      "fencing disabled reported",
      async () => condition(await host("nofence"), "Fenced")?.reason === "FencingDisabled",
    );
    // Longer than any fence window here: without fencing nothing moves by itself.
    await new Promise((r) => setTimeout(r, 6000));
    assert.equal((await xd("nf")).status?.host, "nofence");
    assert.equal((await sim?.getDomain(uuid))?.state, "running");

    // The administrator declares the host off (wrongly here: its copy still runs, as after a mistake).
    await client.mergePatch(resources.xenHosts, "nofence", undefined, { spec: { outOfService: true } });
    await until("restarted elsewhere", async () => {
      const d = await xd("nf");
      return d.status?.phase === "Running" && ["h2", "h3"].includes(d.status.host ?? "");
    });
    assert.equal(condition(await host("nofence"), "Fenced")?.reason, "OutOfService");

    // The agent comes back: the stale copy goes before the host reports Ready again.
    const back = await newAgent("nofence", sim as Sim, false);
    const restartedAt = Date.now();
    await back.start();
    try {
      await until("Ready again", async () => {
        const r = condition(await host("nofence"), "Ready");
        return r?.status === "True" && Date.parse(r.lastTransitionTime ?? "") >= restartedAt - 1000;
      });
      assert.equal(await sim?.getDomain(uuid), undefined, "the stale copy was destroyed before Ready");
      await client.mergePatch(resources.xenHosts, "nofence", undefined, { spec: { outOfService: false } });
      await until("unfenced", async () => condition(await host("nofence"), "Fenced")?.status === "False");
      // Only the restarted copy's host ever ran it besides the mistaken one.
      const others = rec.overlaps.filter((o) => !o.startsWith(uuid));
      assert.deepEqual(others, []);
    } finally {
      await back.stop();
    }
  });
  it("a cleanly stopped agent (an upgrade) says its fencing is off: its domains stay bound however long it is away", async () => {
    for (const h of ["h1", "h3", "nofence"]) await cordon(h, true);
    await domain("up", "Always");
    await until("up on h2", async () => {
      const d = await xd("up");
      return d.status?.phase === "Running" && d.status.host === "h2";
    });
    await cordon("h3", false);
    const uuid = (await xd("up")).status?.uuid ?? "";
    const sim = fleet.sims.get("h2");
    const resets = sim?.watchdogResets ?? 0;
    await fleet.agents.get("h2")?.stop();
    assert.equal((await host("h2")).status?.fencing?.enabled, false, "fencing off, published before disarming");
    await until("heartbeat lost", async () => condition(await host("h2"), "Ready")?.status === "False");
    // Well past the fence window and margin: a disarmed host does not reset, so nothing may move.
    await new Promise((r) => setTimeout(r, FENCE.fenceTimeoutMs + FENCE.watchdogTimeoutMs + MARGIN_MS + 3000));
    assert.equal(condition(await host("h2"), "Fenced")?.reason, "FencingDisabled");
    assert.equal((await xd("up")).status?.host, "h2", "still bound to h2");
    assert.equal((await sim?.getDomain(uuid))?.state, "running");
    assert.equal(sim?.watchdogResets, resets, "the host did not reset");
    const healthErrors = async () =>
      (await op.manager.metrics.reconcileErrors.get()).values
        .filter((v) => v.labels.controller === "hosthealth")
        .reduce((n, v) => n + v.value, 0);
    const errorsBefore = await healthErrors();
    // The new agent arms the watchdog and says so.
    const next = await newAgent("h2", sim as Sim, true);
    await next.start();
    try {
      await until("fencing on again", async () => (await host("h2")).status?.fencing?.enabled === true);
      await until("Ready again", async () => condition(await host("h2"), "Ready")?.status === "True");
      await until("Fenced follows the armed watchdog", async () => {
        const f = condition(await host("h2"), "Fenced");
        return f?.status === "False" && f.reason !== "FencingDisabled";
      });
      // The heartbeat came back before the agent's Ready: each write of the conditions was valid.
      assert.equal(await healthErrors(), errorsBefore, "host health reconciles failed");
      assert.equal((await sim?.getDomain(uuid))?.state, "running", "adopted, not restarted");
      assert.deepEqual(
        rec.overlaps.filter((o) => o.startsWith(uuid)),
        [],
      );
    } finally {
      await next.stop();
    }
  });
});
