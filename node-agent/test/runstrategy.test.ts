// Every runStrategy against both ways a guest can end (it crashes, or it
// powers itself off), the crash loop's doubling backoff, Halted both ways,
// and the powerState transitions not covered elsewhere: a real API server,
// one agent, the sim driver, a short backoff (400 ms doubling to 3.2 s).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { resources, type XenDomain } from "@kubexen/crds";
import { type ControlPlane, startKubexenControlPlane, until } from "@kubexen/e2e";
import { SimHypervisor } from "@kubexen/hypervisor";
import { createLogger, KubeClient, SdkMetrics } from "@kubexen/sdk";
import { NodeAgent } from "../src/index.ts";

const log = createLogger("runstrategy-test", process.env.LOG_LEVEL ?? "warn");
const NS = "runstrategy";
const BACKOFF = { baseMs: 400, maxMs: 3200 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("node agent: runStrategy and powerState", () => {
  let cp: ControlPlane;
  let client: KubeClient;
  let sim: SimHypervisor;
  let agent: NodeAgent;
  const getXd = (name: string) => client.get<XenDomain>(resources.xenDomains, name, NS);

  async function bound(name: string, spec: Record<string, unknown>): Promise<string> {
    const uuid = randomUUID();
    await client.create(resources.xenDomains, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenDomain",
      metadata: { name, namespace: NS },
      spec: { memory: "64Mi", boot: { kernel: "/boot/vmlinuz" }, ...spec },
    });
    await client.applyStatus(
      resources.xenDomains,
      {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenDomain",
        metadata: { name, namespace: NS },
        status: { host: "rs", uuid },
      },
      "test-scheduler",
    );
    return uuid;
  }
  const phase = async (name: string) => (await getXd(name)).status?.phase;

  before(async () => {
    cp = await startKubexenControlPlane([NS]);
    client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
    sim = new SimHypervisor({ hostname: "rs", memoryMiB: 8192, cpus: 8 });
    agent = new NodeAgent({
      kubeConfig: cp.kubeConfig(),
      host: "rs",
      hypervisor: sim,
      // The domains here boot /boot/vmlinuz.
      allowedPathRoots: ["/boot"],
      heartbeatIntervalMs: 1000,
      reportIntervalMs: 1000,
      restartBackoff: BACKOFF,
      logger: log,
    });
    await agent.start();
  });
  after(async () => {
    await agent?.stop();
    await cp?.stop();
  });

  const cases: Array<{ rs: string; ev: "crash" | "poweroff"; restarts: boolean; phase?: string }> = [
    { rs: "Always", ev: "crash", restarts: true },
    { rs: "Always", ev: "poweroff", restarts: true },
    { rs: "RerunOnFailure", ev: "crash", restarts: true },
    { rs: "RerunOnFailure", ev: "poweroff", restarts: false, phase: "Succeeded" },
    { rs: "Once", ev: "crash", restarts: false, phase: "Failed" },
    { rs: "Once", ev: "poweroff", restarts: false, phase: "Succeeded" },
    { rs: "Manual", ev: "crash", restarts: false, phase: "Failed" },
    { rs: "Manual", ev: "poweroff", restarts: false, phase: "Stopped" },
  ];

  it("restarts or leaves each guest as its runStrategy says, after a crash and after a power-off", async () => {
    await Promise.all(
      cases.map(async (c) => {
        const name = `${c.rs.toLowerCase()}-${c.ev}`;
        const uuid = await bound(name, { runStrategy: c.rs });
        await until(`${name} running`, async () => (await phase(name)) === "Running");
        const domid = (await sim.getDomain(uuid))?.domid;
        sim.guestEvent(uuid, c.ev);
        if (c.restarts) {
          await until(`${name} restarted`, async () => {
            const d = await sim.getDomain(uuid);
            return d?.state === "running" && d.domid !== domid && (await phase(name)) === "Running";
          });
          assert.equal((await getXd(name)).status?.restartCount, 1, `${name} counts its restart`);
        } else {
          await until(`${name} ${c.phase}`, async () => (await phase(name)) === c.phase);
          await sleep(2 * BACKOFF.baseMs + 500);
          assert.equal(await sim.getDomain(uuid), undefined, `${name} stays off`);
          assert.equal(await phase(name), c.phase);
        }
      }),
    );
  });

  it("backs off a crash loop, doubling each time, and never restarts before the planned time", async () => {
    const uuid = await bound("loop", { runStrategy: "Always" });
    await until("running", async () => (await phase("loop")) === "Running");
    const starts: number[] = [];
    const off = sim.watch((e) => {
      if (e.uuid === uuid && e.type === "state" && e.state === "running") starts.push(Date.now());
    });
    try {
      for (let k = 1; k <= 4; k++) {
        const crashedAt = Date.now();
        sim.guestEvent(uuid, "crash");
        await until(`crash ${k} recorded`, async () => (await getXd("loop")).status?.restartCount === k);
        const xd = await getXd("loop");
        assert.equal(xd.status?.phase, "CrashLoopBackOff");
        const planned = Date.parse(xd.status?.nextRestartTime ?? "");
        const delay = BACKOFF.baseMs * 2 ** (k - 1);
        // The planned restart is the backoff after the crash was seen (which takes at most a moment).
        assert.ok(
          planned - crashedAt >= delay - 1000 && planned - crashedAt <= delay + 1000,
          `crash ${k}: +${planned - crashedAt} ms`,
        );
        await until(`restart ${k}`, async () => (await sim.getDomain(uuid))?.state === "running", 15_000);
        const restartedAt = starts.at(-1) ?? 0;
        // RFC 3339 in status has second precision: allow for the truncation.
        assert.ok(restartedAt >= planned - 1000, `restart ${k} came ${planned - restartedAt} ms early`);
      }
    } finally {
      off();
    }
    const xd = await getXd("loop");
    assert.equal(xd.status?.restartCount, 4);
    assert.ok(xd.status?.lastRestartTime);
  });

  it("keeps a Halted domain off, starts it when switched to Always, stops it when switched back", async () => {
    const uuid = await bound("halted", { runStrategy: "Halted" });
    await until("reported", async () => (await phase("halted")) === "Stopped");
    await sleep(1000);
    assert.equal(await sim.getDomain(uuid), undefined);
    await client.mergePatch(resources.xenDomains, "halted", NS, { spec: { runStrategy: "Always" } });
    await until(
      "running",
      async () => (await sim.getDomain(uuid))?.state === "running" && (await phase("halted")) === "Running",
    );
    await client.mergePatch(resources.xenDomains, "halted", NS, { spec: { runStrategy: "Halted" } });
    await until("stopped", async () => !(await sim.getDomain(uuid)) && (await phase("halted")) === "Stopped");
  });

  it("goes Running → Saved → Paused (restored paused) → Running, keeping its UUID", async () => {
    const uuid = await bound("power", {});
    await until("running", async () => (await phase("power")) === "Running");
    await client.mergePatch(resources.xenDomains, "power", NS, { spec: { powerState: "Saved" } });
    await until("saved", async () => (await phase("power")) === "Saved" && !(await sim.getDomain(uuid)));
    await client.mergePatch(resources.xenDomains, "power", NS, { spec: { powerState: "Paused" } });
    await until(
      "restored paused",
      async () => (await sim.getDomain(uuid))?.state === "paused" && (await phase("power")) === "Paused",
    );
    assert.equal((await getXd("power")).status?.savedImage, undefined);
    await client.mergePatch(resources.xenDomains, "power", NS, { spec: { powerState: "Running" } });
    await until(
      "running again",
      async () => (await sim.getDomain(uuid))?.state === "running" && (await phase("power")) === "Running",
    );
  });
});
