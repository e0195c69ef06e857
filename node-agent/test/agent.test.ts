// The node agent against a real API server with the sim driver: host
// registration and heartbeat, Ready lost when heartbeats stop, the domain
// lifecycle, adoption after a restart, orphans, and specs a host cannot run.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { resources, signMigrationToken, type XenDomain, type XenHost } from "@kubexen/crds";
import { type ControlPlane, startKubexenControlPlane, until } from "@kubexen/e2e";
import { SimHypervisor } from "@kubexen/hypervisor";
import { Controller, createLogger, KubeClient, SdkMetrics } from "@kubexen/sdk";
import { HostHealth, LEASES } from "../../operator/src/hosthealth.ts";
import { NodeAgent, SimWatchdog } from "../src/index.ts";

const log = createLogger("agent-test", process.env.LOG_LEVEL ?? "warn");
const NS = "agent-test";
const FILES = ["/boot/vmlinuz", "/boot/initrd.img", "/var/lib/xen/images/a.img"];
/** The dom0 directories FILES live in: what these agents allow. */
const ROOTS = ["/boot", "/var/lib/xen/images"];

describe("node agent (sim driver)", () => {
  let cp: ControlPlane;
  let client: KubeClient;
  let sim: SimHypervisor;
  let agent: NodeAgent;
  let stateDir: string;
  /** A real images directory with a disk and a link out of it, allowed besides ROOTS. */
  let images: string;
  /** What exists on the sim host: FILES and the images directory's files. */
  let files: string[];
  const newAgent = (s: SimHypervisor) =>
    new NodeAgent({
      kubeConfig: cp.kubeConfig(),
      host: "xen-a",
      hypervisor: s,
      allowedPathRoots: [...ROOTS, images],
      allowedBridges: ["xenbr0"],
      heartbeatIntervalMs: 1000,
      leaseDurationSeconds: 3,
      reportIntervalMs: 500,
      saveDir: "/var/lib/kubexen/save",
      logger: log,
      migrationEndpoint: "127.0.0.1:9443",
    });
  const getXd = (name: string) => client.get<XenDomain>(resources.xenDomains, name, NS);

  /** Creates a XenDomain and binds it to xen-a as the scheduler would (finalizer, host, UUID). */
  async function bound(name: string, spec: Record<string, unknown>): Promise<string> {
    const uuid = randomUUID();
    await client.create(resources.xenDomains, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenDomain",
      metadata: { name, namespace: NS, finalizers: ["kubexen.io/domain"] },
      spec: { memory: "128Mi", boot: { kernel: "/boot/vmlinuz", ramdisk: "/boot/initrd.img" }, ...spec },
    });
    await client.applyStatus(
      resources.xenDomains,
      {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenDomain",
        metadata: { name, namespace: NS },
        status: { host: "xen-a", uuid },
      },
      "test-scheduler",
    );
    return uuid;
  }

  before(async () => {
    cp = await startKubexenControlPlane([NS]);
    client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
    stateDir = mkdtempSync(join(tmpdir(), "kubexen-agent-test-"));
    const host = realpathSync(mkdtempSync(join(tmpdir(), "kubexen-agent-dom0-")));
    images = join(host, "images");
    mkdirSync(images);
    mkdirSync(join(host, "outside"));
    writeFileSync(join(images, "good.img"), "");
    writeFileSync(join(host, "outside", "secret.img"), "");
    symlinkSync("../outside/secret.img", join(images, "escape.img"));
    files = [...FILES, join(images, "good.img"), join(images, "escape.img"), join(host, "outside", "secret.img")];
    sim = new SimHypervisor({ hostname: "xen-a", memoryMiB: 4096, cpus: 4, files, stateDir });
    agent = newAgent(sim);
    await agent.start();
  });
  after(async () => {
    await agent?.stop();
    await cp?.stop();
    rmSync(stateDir, { recursive: true, force: true });
    rmSync(join(images, ".."), { recursive: true, force: true });
  });

  it("registers its XenHost with capacity, capabilities and Ready, and renews its Lease", async () => {
    await until("host reported", async () => {
      const h = await client.get<XenHost>(resources.xenHosts, "xen-a");
      return (
        h.status?.capacity?.memoryMiB === 4096 &&
        h.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true
      );
    });
    const h = await client.get<XenHost>(resources.xenHosts, "xen-a");
    assert.equal(h.status?.allocatable?.memoryMiB, 4096 - 2048);
    assert.deepEqual(h.status?.capabilities?.liveMigratable, ["pvh", "hvm"]);
    // Run without migration credentials it cannot take a stream, so it advertises no endpoint.
    assert.equal(h.status?.migrationEndpoint, undefined);
    assert.equal(h.status?.driver, "sim");
    const lease = (t: number) =>
      client
        .request<{ spec: { renewTime: string } }>(
          "GET",
          "/apis/coordination.k8s.io/v1/namespaces/kubexen-system/leases/xenhost-xen-a",
        )
        .then((l) => Date.parse(l.spec.renewTime) > t);
    const t0 = Date.now();
    await until("lease renewed", () => lease(t0), 5000);
  });

  it("creates a bound domain, reports it Running with its domid, and stops, pauses, saves and restores it", async () => {
    const uuid = await bound("web", { vcpus: 2, maxVcpus: 2 });
    await until("running", async () => (await getXd("web")).status?.phase === "Running");
    const xd = await getXd("web");
    const dom = await sim.getDomain(uuid);
    assert.equal(xd.status?.domid, dom?.domid);
    assert.equal(dom?.name, `${NS}.web`);
    assert.ok(xd.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
    assert.ok(xd.status?.conditions?.some((c) => c.type === "Migratable" && c.status === "True"));

    await client.mergePatch(resources.xenDomains, "web", NS, { spec: { powerState: "Paused" } });
    await until(
      "paused",
      async () => (await sim.getDomain(uuid))?.state === "paused" && (await getXd("web")).status?.phase === "Paused",
    );

    await client.mergePatch(resources.xenDomains, "web", NS, { spec: { powerState: "Saved" } });
    await until("saved", async () => (await getXd("web")).status?.phase === "Saved");
    assert.equal(await sim.getDomain(uuid), undefined);
    assert.equal((await getXd("web")).status?.savedImage, `/var/lib/kubexen/save/${uuid}.save`);

    await client.mergePatch(resources.xenDomains, "web", NS, { spec: { powerState: "Running" } });
    await until(
      "restored",
      async () => (await sim.getDomain(uuid))?.state === "running" && (await getXd("web")).status?.phase === "Running",
    );
    assert.equal((await getXd("web")).status?.savedImage, undefined);

    await client.mergePatch(resources.xenDomains, "web", NS, { spec: { memory: "96Mi", vcpus: 1 } });
    await until(
      "ballooned",
      async () => (await sim.getDomain(uuid))?.memoryMiB === 96 && (await sim.getDomain(uuid))?.vcpus === 1,
    );

    await client.mergePatch(resources.xenDomains, "web", NS, { spec: { runStrategy: "Halted" } });
    await until("stopped", async () => (await getXd("web")).status?.phase === "Stopped");
    assert.equal(await sim.getDomain(uuid), undefined);
  });

  it("restarts a crashed guest with backoff and counts the restart", async () => {
    const uuid = await bound("crashy", {});
    await until("running", async () => (await getXd("crashy")).status?.phase === "Running");
    const domid = (await sim.getDomain(uuid))?.domid;
    sim.guestEvent(uuid, "crash");
    await until("crash recorded", async () => (await getXd("crashy")).status?.restartCount === 1);
    assert.equal((await getXd("crashy")).status?.phase, "CrashLoopBackOff");
    assert.equal(await sim.getDomain(uuid), undefined, "the crashed domain was cleaned up");
    await until("restarted after the backoff", async () => (await getXd("crashy")).status?.phase === "Running", 20_000);
    assert.notEqual((await sim.getDomain(uuid))?.domid, domid);
  });

  it("adopts its running domains after a restart without restarting them", async () => {
    const uuid = await bound("steady", {});
    await until("running", async () => (await getXd("steady")).status?.phase === "Running");
    const before = await sim.getDomain(uuid);
    await agent.halt();
    const sim2 = new SimHypervisor({ hostname: "xen-a", memoryMiB: 4096, cpus: 4, files, stateDir });
    sim = sim2;
    agent = newAgent(sim2);
    await agent.start();
    await new Promise((r) => setTimeout(r, 1500));
    const after = await sim2.getDomain(uuid);
    assert.equal(after?.domid, before?.domid, "same domid: not restarted");
    assert.equal((await getXd("steady")).status?.phase, "Running");
    assert.equal((await getXd("steady")).status?.restartCount, undefined);
  });

  it("reports a domain it does not own as an orphan and leaves it alone", async () => {
    const orphan = await sim.createOrphan("handmade");
    await until("orphan reported", async () =>
      ((await client.get<XenHost>(resources.xenHosts, "xen-a")).status?.orphans ?? []).some(
        (o) => o.uuid === orphan.uuid,
      ),
    );
    // The event follows the status write.
    await until("orphan event", async () => {
      const events = await client.list<
        { metadata: object; reason: string; note: string; regarding: { name: string } } & {
          metadata: { name?: string };
        }
      >(
        { group: "events.k8s.io", version: "v1", plural: "events", kind: "Event", namespaced: true },
        { namespace: "default" },
      );
      return events.items.some(
        (e) => e.reason === "OrphanDomain" && e.regarding.name === "xen-a" && e.note.includes(orphan.uuid),
      );
    });
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await sim.getDomain(orphan.uuid))?.domid, orphan.domid, "untouched");
  });

  it("reports a spec this host cannot run with a Stalled condition and an event, leaving nothing on the host", async () => {
    const missing = await bound("nokernel", { boot: { kernel: "/boot/missing-vmlinuz" } });
    const huge = await bound("huge", { memory: "64Gi" });
    await until("stalled", async () => {
      const a = await getXd("nokernel");
      const b = await getXd("huge");
      return (
        a.status?.conditions?.some(
          (c) =>
            c.type === "Stalled" &&
            c.status === "True" &&
            c.reason === "MissingFile" &&
            c.message.includes("/boot/missing-vmlinuz"),
        ) === true &&
        b.status?.conditions?.some(
          (c) => c.type === "Stalled" && c.status === "True" && c.reason === "InsufficientMemory",
        ) === true
      );
    });
    assert.equal(await sim.getDomain(missing), undefined);
    assert.equal(await sim.getDomain(huge), undefined);
    const events = await client.list<
      { metadata: object; reason: string; type: string; regarding: { name: string } } & { metadata: { name?: string } }
    >({ group: "events.k8s.io", version: "v1", plural: "events", kind: "Event", namespaced: true }, { namespace: NS });
    assert.ok(
      events.items.some((e) => e.regarding.name === "nokernel" && e.reason === "MissingFile" && e.type === "Warning"),
    );
    // Fixing the spec clears it.
    await client.mergePatch(resources.xenDomains, "nokernel", NS, { spec: { boot: { kernel: "/boot/vmlinuz" } } });
    await until("runs after the fix", async () => (await getXd("nokernel")).status?.phase === "Running");
    assert.ok(!(await getXd("nokernel")).status?.conditions?.some((c) => c.type === "Stalled"));
  });

  it("refuses a domain naming a dom0 file, a link out of its roots or a bridge it does not allow: Stalled, a Warning, never created", async () => {
    // Record every create the sim is asked for: a refused domain must never get that far.
    const asked = new Set<string>();
    const create = sim.create.bind(sim);
    sim.create = (c, o) => {
      asked.add(c.uuid);
      return create(c, o);
    };
    try {
      const bad = {
        shadow: {
          uuid: await bound("shadow", { boot: { kernel: "/etc/shadow" } }),
          says: "spec.boot.kernel: /etc/shadow resolves outside the allowed roots (/boot, /var/lib/xen/images, ",
        },
        escape: {
          uuid: await bound("escape", { disks: [{ vdev: "xvda", source: join(images, "escape.img") }] }),
          says: `spec.disks[0].source: ${join(images, "escape.img")} resolves outside the allowed roots`,
        },
        bridged: {
          uuid: await bound("bridged", { networks: [{ bridge: "br-mgmt" }] }),
          says: "spec.networks[0].bridge: br-mgmt is not an allowed bridge (xenbr0)",
        },
      };
      const good = await bound("good", {
        disks: [{ vdev: "xvda", source: join(images, "good.img") }],
        networks: [{ bridge: "xenbr0" }],
      });
      await until("the good one runs", async () => (await getXd("good")).status?.phase === "Running");
      assert.ok(await sim.getDomain(good));
      await until("each refused", async () => {
        for (const [name, b] of Object.entries(bad)) {
          const st = (await getXd(name)).status;
          const stalled = st?.conditions?.find((c) => c.type === "Stalled");
          if (
            st?.phase !== "Failed" ||
            stalled?.status !== "True" ||
            stalled.reason !== "ForbiddenHostResource" ||
            !stalled.message.includes(b.says)
          )
            return false;
        }
        return true;
      });
      const events = await client.list<{
        metadata: { name?: string };
        reason: string;
        type: string;
        note: string;
        reportingInstance?: string;
        regarding: { name: string };
      }>(
        { group: "events.k8s.io", version: "v1", plural: "events", kind: "Event", namespaced: true },
        { namespace: NS },
      );
      for (const [name, b] of Object.entries(bad)) {
        assert.ok(
          events.items.some(
            (e) =>
              e.regarding.name === name &&
              e.type === "Warning" &&
              e.reason === "ForbiddenHostResource" &&
              // The agent's events name its host (the admission policy holds them to it), not the machine's.
              e.reportingInstance === "xen-a" &&
              e.note.includes(b.says),
          ),
          `a Warning event for ${name}`,
        );
        assert.equal(asked.has(b.uuid), false, `${name} never reached the hypervisor`);
        assert.equal(await sim.getDomain(b.uuid), undefined);
      }
      assert.ok(asked.has(good));
      // The tenant sees that the link is refused, not where it leads.
      assert.ok(!(await getXd("escape")).status?.conditions?.some((c) => c.message.includes("secret")));
      // A new generation is checked again: allowed now, it runs.
      await client.mergePatch(resources.xenDomains, "shadow", NS, { spec: { boot: { kernel: "/boot/vmlinuz" } } });
      await until("runs once the spec is allowed", async () => (await getXd("shadow")).status?.phase === "Running");
      assert.ok(!(await getXd("shadow")).status?.conditions?.some((c) => c.type === "Stalled"));
      // And a generation that stays forbidden stays refused.
      await client.mergePatch(resources.xenDomains, "bridged", NS, { spec: { networks: [{ bridge: "xenbr1" }] } });
      await until("refused again", async () => {
        const c = (await getXd("bridged")).status?.conditions?.find((x) => x.type === "Stalled");
        return c?.status === "True" && c.message.includes("xenbr1 is not an allowed bridge");
      });
      assert.equal(asked.has(bad.bridged.uuid), false);
    } finally {
      sim.create = create;
    }
  });

  it("stops the domain when its XenDomain is deleted, before the finalizer lets it go", async () => {
    const uuid = await bound("doomed", {});
    await until("running", async () => (await getXd("doomed")).status?.phase === "Running");
    await client.delete(resources.xenDomains, "doomed", NS);
    await until("stopped for deletion", async () => {
      const xd = await getXd("doomed");
      return xd.status?.phase === "Terminating" && xd.status.state === "absent";
    });
    assert.equal(await sim.getDomain(uuid), undefined);
    // The operator's part: release the finalizer once the agent reports the domain gone.
    await client.mergePatch(resources.xenDomains, "doomed", NS, { metadata: { finalizers: null } });
    await until("gone", async () => (await client.getOrUndefined(resources.xenDomains, "doomed", NS)) === undefined);
  });

  it("is marked Ready=False by host health once its heartbeat stops, never from a lagging Lease cache", async () => {
    const metrics = new SdkMetrics();
    const opClient = new KubeClient(cp.kubeConfig(), { metrics });
    const { Informer } = await import("@kubexen/sdk");
    const hosts = new Informer<XenHost>(opClient, resources.xenHosts, { logger: log, metrics });
    // A Lease cache that stops hearing renewals: it soon shows an expired Lease for a live host.
    const leases = new Informer(opClient, LEASES, { namespace: "kubexen-system", logger: log, metrics });
    const hh = new HostHealth({
      client: opClient,
      hosts,
      leases,
      namespace: "kubexen-system",
      fieldManager: "kubexen-operator",
      log,
    });
    const ctrl = new Controller({ name: "hosthealth", reconcile: (k) => hh.reconcile(k), logger: log, metrics });
    ctrl.watch(hosts);
    hosts.start();
    leases.start();
    await Promise.all([hosts.synced(), leases.synced()]);
    await leases.stop();
    ctrl.start();
    const ready = async () => {
      const h = await client.get<XenHost>(resources.xenHosts, "xen-a");
      return h.status?.conditions?.find((c) => c.type === "Ready");
    };
    try {
      // Past the cached Lease's 3 s: every reconcile now sees it expired and must ask the API server.
      for (const end = Date.now() + 5000; Date.now() < end; ) {
        assert.equal((await ready())?.status, "True", "Ready while the heartbeat runs, whatever the cache says");
        await new Promise((r) => setTimeout(r, 250));
      }
      await agent.partition();
      await until(
        "Ready=False",
        async () => {
          const r = await ready();
          return r?.status === "False" && r.reason === "HeartbeatLost";
        },
        15_000,
      );
    } finally {
      await ctrl.stop();
      await hosts.stop();
    }
  });
});

describe("node agent self-fencing (sim watchdog)", () => {
  it("resets its host when it cannot renew its Lease for the fence timeout, and not before", async () => {
    const cp = await startKubexenControlPlane([NS]);
    const sim = new SimHypervisor({ hostname: "xen-f", memoryMiB: 4096, files: FILES });
    const client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
    const agent = new NodeAgent({
      kubeConfig: cp.kubeConfig(),
      host: "xen-f",
      hypervisor: sim,
      allowedPathRoots: ROOTS,
      // Seconds, not fractions: a process stall of a second or two on a loaded machine must not pass
      // for a lost heartbeat while the heartbeat is healthy.
      heartbeatIntervalMs: 1000,
      leaseDurationSeconds: 6,
      logger: log,
      fencing: { watchdog: new SimWatchdog(sim), fenceTimeoutMs: 6000, watchdogTimeoutMs: 3000 },
    });
    try {
      await agent.start();
      const uuid = randomUUID();
      await client.create(resources.xenDomains, {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenDomain",
        metadata: { name: "fenced", namespace: NS },
        spec: { memory: "128Mi", boot: { kernel: "/boot/vmlinuz" } },
      });
      await client.applyStatus(
        resources.xenDomains,
        {
          apiVersion: "kubexen.io/v1alpha1",
          kind: "XenDomain",
          metadata: { name: "fenced", namespace: NS },
          status: { host: "xen-f", uuid },
        },
        "test-scheduler",
      );
      await until("running", async () => (await sim.getDomain(uuid))?.state === "running");
      // With a healthy heartbeat, the watchdog is fed well past its timeout.
      await new Promise((r) => setTimeout(r, 10_000));
      assert.equal(sim.watchdogResets, 0);
      assert.ok(await sim.getDomain(uuid));
      const cutAt = Date.now();
      await agent.partition();
      await until("host reset by its watchdog", async () => sim.watchdogResets === 1, 30_000);
      const elapsed = Date.now() - cutAt;
      assert.ok(elapsed >= 6000, `fenced after ${elapsed} ms, not before the fence timeout`);
      assert.ok(agent.isFenced);
      assert.deepEqual(await sim.listDomains(), [], "the reset destroyed every domain");
    } finally {
      await agent.halt();
      await cp.stop();
    }
  });
});

describe("node agents migrating a domain between them (the test plays the operator)", () => {
  it("admits, sends with progress, receives, and reports both sides; the domain runs on one host at every moment; a target refuses a domain its policy does not allow", async () => {
    const { mkdtempSync: mk, readFileSync } = await import("node:fs");
    const { issueHostCert, makeCa } = await import("@kubexen/e2e");
    const dir = mk(join(tmpdir(), "kubexen-mig-"));
    const ca = await makeCa(dir, "migration-ca");
    const tlsFor = async (h: string) => {
      const p = await issueHostCert(dir, ca, h);
      return { cert: readFileSync(p.certFile), key: readFileSync(p.keyFile) };
    };
    const cp = await startKubexenControlPlane([NS]);
    const client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
    const { freePort } = await import("@kubexen/e2e");
    const hosts = ["xen-a", "xen-b"] as const;
    const sims = Object.fromEntries(
      hosts.map((h) => [h, new SimHypervisor({ hostname: h, memoryMiB: 4096, files: FILES })]),
    ) as Record<string, SimHypervisor>;
    const agents: NodeAgent[] = [];
    try {
      for (const h of hosts) {
        const port = await freePort();
        const a = new NodeAgent({
          kubeConfig: cp.kubeConfig(),
          host: h,
          hypervisor: sims[h] as SimHypervisor,
          allowedPathRoots: ROOTS,
          // xen-b has no xenbr1: a domain on it cannot move there.
          allowedBridges: h === "xen-a" ? ["xenbr0", "xenbr1"] : ["xenbr0"],
          logger: log,
          heartbeatIntervalMs: 1000,
          reportIntervalMs: 500,
          migrationEndpoint: `127.0.0.1:${port}`,
          migration: {
            ca: readFileSync(ca.certFile),
            cert: await tlsFor(h),
            certDir: join(dir, h),
            listenPort: port,
            listenHost: "127.0.0.1",
          },
        });
        await a.start();
        agents.push(a);
      }
      const uuid = randomUUID();
      await client.create(resources.xenDomains, {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenDomain",
        metadata: { name: "mover", namespace: NS },
        spec: { memory: "256Mi", boot: { kernel: "/boot/vmlinuz" } },
      });
      const bind = (host: string) =>
        client.applyStatus(
          resources.xenDomains,
          {
            apiVersion: "kubexen.io/v1alpha1",
            kind: "XenDomain",
            metadata: { name: "mover", namespace: NS },
            status: { host, uuid },
          },
          "test-scheduler",
        );
      await bind("xen-a");
      await until("running on a", async () => (await sims["xen-a"]?.getDomain(uuid))?.state === "running");
      const overlap: string[] = [];
      const sampler = setInterval(async () => {
        const running = [];
        for (const h of hosts) if ((await sims[h]?.getDomain(uuid))?.state === "running") running.push(h);
        if (running.length > 1) overlap.push(running.join("+"));
      }, 5);

      await client.create(resources.xenMigrations, {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenMigration",
        metadata: { name: "move-1", namespace: NS },
        spec: { domain: "mover", targetHost: "xen-b" },
      });
      const op = (status: Record<string, unknown>) =>
        client.applyStatus(
          resources.xenMigrations,
          {
            apiVersion: "kubexen.io/v1alpha1",
            kind: "XenMigration",
            metadata: { name: "move-1", namespace: NS },
            status,
          },
          "test-operator",
        );
      const mig = () => client.get<import("@kubexen/crds").XenMigration>(resources.xenMigrations, "move-1", NS);
      const cond = async (t: string) => (await mig()).status?.conditions?.find((c) => c.type === t);
      await op({
        phase: "PreparingTarget",
        sourceHost: "xen-a",
        targetHost: "xen-b",
        domainUUID: uuid,
        memoryMiB: 256,
      });
      await until("target ready", async () => (await cond("TargetReady"))?.status === "True");
      // The operator's signature on this transfer, as only the CA key's holder can make it.
      const transferToken = signMigrationToken(
        {
          migration: `${NS}/move-1`,
          uid: (await mig()).metadata.uid ?? "",
          source: "xen-a",
          target: "xen-b",
          exp: Math.floor(Date.now() / 1000) + 600,
        },
        readFileSync(ca.keyFile, "utf8"),
      );
      await op({
        phase: "Transferring",
        sourceHost: "xen-a",
        targetHost: "xen-b",
        domainUUID: uuid,
        memoryMiB: 256,
        transferToken,
      });
      await until(
        "both sides reported",
        async () => (await cond("SourceDone"))?.status === "True" && (await cond("TargetRunning"))?.status === "True",
        30_000,
      );
      const m = await mig();
      assert.ok((m.status?.bytesTransferred ?? 0) >= 256 * 2 ** 20, "bytes reported");
      assert.ok((m.status?.downtimeMs ?? 0) > 0, "downtime reported");
      // The operator's handover: the XenDomain now belongs to xen-b.
      await bind("xen-b");
      await op({ phase: "Succeeded", sourceHost: "xen-a", targetHost: "xen-b", domainUUID: uuid, memoryMiB: 256 });
      await until("reported running on b", async () => {
        const xd = await client.get<XenDomain>(resources.xenDomains, "mover", NS);
        return xd.status?.phase === "Running" && xd.status.domid === (await sims["xen-b"]?.getDomain(uuid))?.domid;
      });
      await new Promise((r) => setTimeout(r, 1500));
      clearInterval(sampler);
      assert.equal(await sims["xen-a"]?.getDomain(uuid), undefined, "the source did not restart it");
      assert.equal((await sims["xen-b"]?.getDomain(uuid))?.state, "running");
      assert.deepEqual(overlap, [], "never running on both hosts");

      // A domain xen-a runs but xen-b's policy does not allow: xen-b is not ready to receive it.
      const picky = randomUUID();
      await client.create(resources.xenDomains, {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenDomain",
        metadata: { name: "picky", namespace: NS },
        spec: { memory: "128Mi", boot: { kernel: "/boot/vmlinuz" }, networks: [{ bridge: "xenbr1" }] },
      });
      await client.applyStatus(
        resources.xenDomains,
        {
          apiVersion: "kubexen.io/v1alpha1",
          kind: "XenDomain",
          metadata: { name: "picky", namespace: NS },
          status: { host: "xen-a", uuid: picky },
        },
        "test-scheduler",
      );
      await until("picky runs on a", async () => (await sims["xen-a"]?.getDomain(picky))?.state === "running");
      await client.create(resources.xenMigrations, {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenMigration",
        metadata: { name: "move-2", namespace: NS },
        spec: { domain: "picky", targetHost: "xen-b" },
      });
      await client.applyStatus(
        resources.xenMigrations,
        {
          apiVersion: "kubexen.io/v1alpha1",
          kind: "XenMigration",
          metadata: { name: "move-2", namespace: NS },
          status: {
            phase: "PreparingTarget",
            sourceHost: "xen-a",
            targetHost: "xen-b",
            domainUUID: picky,
            memoryMiB: 128,
          },
        },
        "test-operator",
      );
      const ready = async () =>
        (
          await client.get<import("@kubexen/crds").XenMigration>(resources.xenMigrations, "move-2", NS)
        ).status?.conditions?.find((c) => c.type === "TargetReady");
      await until("target refused", async () => (await ready())?.status === "False");
      const refusal = await ready();
      assert.equal(refusal?.reason, "ForbiddenHostResource");
      assert.match(refusal?.message ?? "", /spec\.networks\[0\]\.bridge: xenbr1 is not an allowed bridge \(xenbr0\)/);
      const events = await client.list<{
        metadata: { name?: string };
        reason: string;
        type: string;
        regarding: { name: string; kind: string };
      }>(
        { group: "events.k8s.io", version: "v1", plural: "events", kind: "Event", namespaced: true },
        { namespace: NS },
      );
      assert.ok(
        events.items.some(
          (e) =>
            e.regarding.kind === "XenMigration" &&
            e.regarding.name === "move-2" &&
            e.reason === "ForbiddenHostResource",
        ),
        "a Warning event on the migration",
      );
      assert.equal(await sims["xen-b"]?.getDomain(picky), undefined, "nothing on the target");
      assert.equal((await sims["xen-a"]?.getDomain(picky))?.state, "running", "still running on the source");
    } finally {
      for (const a of agents) await a.stop();
      await cp.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
