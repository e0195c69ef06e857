// The sim driver's model and faults: pre-copy in numbers, a failure at each
// migration phase (the domain keeps running on the source, nothing is left
// on the target), the ambiguous handover, state that outlives the process.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  autoConvergeThrottle,
  type DomainConfig,
  MigrationError,
  type MigrationFaultPhase,
  PAGE_BYTES,
  planPrecopy,
  SimHypervisor,
  throttleCap,
} from "../src/index.ts";
import { tcpPair } from "./link.ts";

const cfg = (name = "g", memory = "256Mi"): DomainConfig => ({
  name,
  uuid: randomUUID(),
  macs: [],
  spec: {
    type: "pvh",
    vcpus: 2,
    memory,
    boot: { kernel: "/boot/vmlinuz" },
    priority: 0,
    runStrategy: "Always",
    powerState: "Running",
    evictionStrategy: "LiveMigrate",
    terminationGracePeriodSeconds: 30,
  },
});

describe("pre-copy model", () => {
  it("sends everything once and converges for an idle guest", () => {
    const p = planPrecopy({ memoryBytes: 2 ** 30, bandwidthBps: 125e6, dirtyPagesPerSec: 0 });
    assert.equal(p.rounds.length, 1);
    assert.ok(p.converged);
    assert.equal(p.bytes, 2 ** 30);
    assert.ok(Math.abs(p.totalMs - (2 ** 30 / 125e6) * 1000 - 30) < 1);
    assert.equal(p.downtimeMs, 30);
  });

  it("stops after 5 rounds when the guest dirties too fast, with a longer downtime", () => {
    const p = planPrecopy({ memoryBytes: 2 ** 30, bandwidthBps: 125e6, dirtyPagesPerSec: 20_000 });
    assert.equal(p.rounds.length, 5);
    assert.equal(p.converged, false);
    assert.ok(p.downtimeMs > 100);
  });

  it("auto-converge throttles from memory sent again: none before half, 20% at half, 10% more per quarter", () => {
    const mem = 2 ** 30;
    const cases: Array<[number, number]> = [
      [0, 0],
      [1, 0],
      [1.49, 0],
      [1.5, 0.2],
      [1.74, 0.2],
      [1.75, 0.3],
      [2, 0.4],
      [3.5, 0.99],
      [100, 0.99],
    ];
    for (const [sent, want] of cases)
      assert.equal(autoConvergeThrottle(mem, sent * mem).toFixed(2), want.toFixed(2), `after ${sent}x memory`);
    assert.throws(() => autoConvergeThrottle(0, 1), /memoryBytes must be positive, got 0/);
    assert.equal(throttleCap(2, 0.2), 160, "two vCPUs throttled by 20%");
    assert.equal(throttleCap(2, 0.5, 50), 25, "a guest's own cap throttled by half");
    assert.equal(throttleCap(1, 0.99), 1, "never 0, which means no cap");
  });

  it("auto-converge lowers the downtime of a guest that does not converge", () => {
    const base = { memoryBytes: 4 * 2 ** 30, bandwidthBps: 125e6, dirtyPagesPerSec: 25_000 };
    const plain = planPrecopy(base);
    const throttled = planPrecopy({ ...base, autoConverge: true });
    assert.ok(throttled.downtimeMs < plain.downtimeMs, `${throttled.downtimeMs} < ${plain.downtimeMs}`);
    assert.ok(throttled.final.throttle > 0);
  });

  it("never beats the physical bound and accounts every page (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 * 1024 }),
        fc.integer({ min: 10, max: 10_000 }),
        fc.integer({ min: 0, max: 200_000 }),
        fc.boolean(),
        (mib, mbps, dirty, auto) => {
          const memoryBytes = mib * 2 ** 20;
          const bandwidthBps = mbps * 2 ** 20;
          const p = planPrecopy({ memoryBytes, bandwidthBps, dirtyPagesPerSec: dirty, autoConverge: auto });
          assert.ok(p.totalMs + 1e-6 >= (memoryBytes / bandwidthBps) * 1000, "total >= memory / bandwidth");
          assert.ok(p.downtimeMs >= 30 && p.downtimeMs <= p.totalMs + 1e-6);
          assert.equal(p.bytes, (p.rounds.reduce((s, r) => s + r.pages, 0) + p.final.pages) * PAGE_BYTES);
          assert.ok(p.rounds.length >= 1 && p.rounds.length <= 5);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("rejects nonsense with the offending value", () => {
    assert.throws(
      () => planPrecopy({ memoryBytes: 0, bandwidthBps: 1, dirtyPagesPerSec: 0 }),
      /memoryBytes must be positive, got 0/,
    );
    assert.throws(
      () => planPrecopy({ memoryBytes: 1, bandwidthBps: -1, dirtyPagesPerSec: 0 }),
      /bandwidthBps must be positive, got -1/,
    );
  });
});

describe("sim migration faults", () => {
  const phases: Array<[MigrationFaultPhase, "send" | "receive"]> = [
    ["prepare", "send"],
    ["prepare", "receive"],
    ["precopy", "send"],
    ["precopy", "receive"],
    ["stopcopy", "send"],
    ["stopcopy", "receive"],
    ["resume", "receive"],
  ];
  for (const [phase, side] of phases) {
    it(`a failure at ${phase} on the ${side} side leaves the domain running on the source only`, async () => {
      const a = new SimHypervisor({ hostname: "a", memoryMiB: 4096 });
      const b = new SimHypervisor({ hostname: "b", memoryMiB: 4096 });
      const c = cfg();
      const d = await a.create(c);
      (side === "send" ? a : b).faults.migration = { phase, side };
      const [sa, sb] = await tcpPair();
      const [sent, recv] = await Promise.allSettled([a.migrateSend(c.uuid, sa), b.migrateReceive(sb)]);
      assert.equal(sent.status, "rejected");
      assert.equal(recv.status, "rejected");
      assert.ok(sent.status === "rejected" && sent.reason instanceof MigrationError && !sent.reason.ambiguous);
      const after = await a.getDomain(c.uuid);
      assert.equal(after?.state, "running");
      assert.equal(after?.domid, d.domid);
      assert.equal(after?.migration, undefined);
      assert.equal(await b.getDomain(c.uuid), undefined, "nothing left on the target");
      assert.equal(b.freeMemoryMiB(), 4096 - 2048, "the target's reservation was released");
    });
  }

  it("a link lost after the go leaves the source copy paused and the outcome ambiguous, never two running copies", async () => {
    const a = new SimHypervisor({ hostname: "a", memoryMiB: 4096 });
    const b = new SimHypervisor({ hostname: "b", memoryMiB: 4096 });
    const c = cfg();
    await a.create(c);
    a.faults.migration = { phase: "handover", side: "send" };
    const [sa, sb] = await tcpPair();
    const [sent] = await Promise.allSettled([a.migrateSend(c.uuid, sa), b.migrateReceive(sb)]);
    assert.ok(sent.status === "rejected" && sent.reason instanceof MigrationError && sent.reason.ambiguous);
    const src = await a.getDomain(c.uuid);
    assert.equal(src?.state, "paused");
    assert.equal(src?.migration, "migratedaway");
    const running = [await a.getDomain(c.uuid), await b.getDomain(c.uuid)].filter((x) => x?.state === "running");
    assert.ok(running.length <= 1);
    // The target never got the go, so the cluster resumes the source copy under its own name.
    assert.equal(await b.getDomain(c.uuid), undefined);
    const resumed = await a.resumeMigratedAway(c.uuid);
    assert.equal(resumed.state, "running");
    assert.equal(resumed.migration, undefined);
    assert.equal(resumed.domid, src?.domid);
    await assert.rejects(a.resumeMigratedAway(c.uuid), /is not a --migratedaway copy/);
  });

  it("refuses an incoming domain the target has no room for", async () => {
    const a = new SimHypervisor({ hostname: "a", memoryMiB: 8192 });
    const b = new SimHypervisor({ hostname: "b", memoryMiB: 2048 + 512 });
    const c = cfg("big", "1Gi");
    await a.create(c);
    const [sa, sb] = await tcpPair();
    const [sent, recv] = await Promise.allSettled([a.migrateSend(c.uuid, sa), b.migrateReceive(sb)]);
    assert.ok(sent.status === "rejected" && /1024 MiB needed, 512 MiB free on b/.test(String(sent.reason.message)));
    assert.equal(recv.status, "rejected");
    assert.equal((await a.getDomain(c.uuid))?.state, "running");
  });

  it("sends its bytes over the link, scaled, and reports modelled stats", async () => {
    const a = new SimHypervisor({ hostname: "a", memoryMiB: 8192, wireScale: 1 / 64 });
    const b = new SimHypervisor({ hostname: "b", memoryMiB: 8192 });
    const c = cfg("m", "512Mi");
    await a.create(c);
    const [sa, sb] = await tcpPair();
    let wireBytes = 0;
    sb.on("data", (d: Buffer) => {
      wireBytes += d.length;
    });
    const [stats] = await Promise.all([a.migrateSend(c.uuid, sa), b.migrateReceive(sb)]);
    assert.ok(stats.bytes >= 512 * 2 ** 20);
    assert.ok(wireBytes >= stats.bytes / 64, `${wireBytes} bytes crossed the link`);
    assert.ok(stats.downtimeMs >= 30);
  });
});

describe("sim host state", () => {
  it("outlives the process that drives it (domains keep running, CPU time keeps growing)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kubexen-sim-"));
    try {
      const first = new SimHypervisor({ hostname: "h", stateDir: dir });
      const c = cfg();
      const d = await first.create(c);
      first.setWorkload(c.uuid, { load: 1 });
      await new Promise((r) => setTimeout(r, 200));
      const second = new SimHypervisor({ hostname: "h", stateDir: dir });
      const again = await second.getDomain(c.uuid);
      assert.equal(again?.domid, d.domid);
      assert.ok((again?.cpuTimeSeconds ?? 0) > 0.2, `cpu ${again?.cpuTimeSeconds}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("loses every domain when the host crashes and refuses calls until it recovers", async () => {
    const h = new SimHypervisor({ hostname: "h" });
    await h.create(cfg());
    h.crash();
    await assert.rejects(h.listDomains(), /host h is down/);
    h.recover();
    assert.deepEqual(await h.listDomains(), []);
  });

  it("reports guest crashes, power-offs and reboots", async () => {
    const h = new SimHypervisor({ hostname: "h" });
    const events: string[] = [];
    h.watch((e) => events.push(e.type === "state" ? `${e.state}:${e.reason ?? ""}` : "gone"));
    const c = cfg();
    const d = await h.create(c);
    h.guestEvent(c.uuid, "reboot");
    assert.notEqual((await h.getDomain(c.uuid))?.domid, d.domid);
    h.guestEvent(c.uuid, "crash");
    assert.equal((await h.getDomain(c.uuid))?.state, "crashed");
    await h.destroy(c.uuid);
    assert.deepEqual(events, ["running:create", "running:reboot", "crashed:crash", "gone"]);
  });
});
