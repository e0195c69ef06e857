// The sim driver's pure parts: its host's capabilities, the pre-copy input of
// a migration, the bytes a round puts on the wire, and injected faults that
// fire once where they are aimed.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { callFaults, type SimFaults, takeMigrationFault } from "../src/sim/faults.ts";
import { hostInfoOf, withDefaults } from "../src/sim/host.ts";
import { PAGE_BYTES, precopyInput } from "../src/sim/precopy.ts";
import { wireBytes } from "../src/sim/wire.ts";

describe("sim host", () => {
  it("fills in defaults and reports guest types and live-migratable ones by HAP and shadow paging", () => {
    const c = withDefaults({ hostname: "h" });
    assert.equal(c.memoryMiB, 65536);
    assert.equal(c.linkMiBps, 1250);
    const info = hostInfoOf(c, 1000);
    assert.deepEqual(info.guestTypes, ["pv", "pvh", "hvm"]);
    assert.deepEqual(info.liveMigratable, ["pvh", "hvm"], "Debian's Xen: no shadow paging, pv does not migrate");
    assert.equal(info.freeMemoryMiB, 1000);
    assert.deepEqual(hostInfoOf(withDefaults({ hostname: "h", shadow: true }), 0).liveMigratable, ["pv", "pvh", "hvm"]);
    const noHap = hostInfoOf(withDefaults({ hostname: "h", hap: false, shadow: true }), 0);
    assert.deepEqual([noHap.guestTypes, noHap.liveMigratable], [["pv"], ["pv"]]);
  });
});

describe("sim migration model", () => {
  it("takes the link or the migration's lower limit, and dirtying scaled by load with a floor", () => {
    const base = { memoryMiB: 1024, dirtyPagesPerSec: 1000, load: 0.5, linkMiBps: 1250 };
    const i = precopyInput(base);
    assert.equal(i.memoryBytes, 2 ** 30);
    assert.equal(i.bandwidthBps, 1250 * 2 ** 20);
    assert.equal(i.dirtyPagesPerSec, 500);
    assert.equal(precopyInput({ ...base, bandwidthMiBps: 100 }).bandwidthBps, 100 * 2 ** 20);
    assert.equal(precopyInput({ ...base, bandwidthMiBps: 5000 }).bandwidthBps, 1250 * 2 ** 20, "the link caps");
    assert.equal(precopyInput({ ...base, bandwidthMiBps: 0 }).bandwidthBps, 1250 * 2 ** 20, "0: no limit");
    assert.equal(precopyInput({ ...base, load: 0 }).dirtyPagesPerSec, 50, "an idle guest still dirties");
  });

  it("puts a round's bytes on the wire scaled, at least one", () => {
    assert.equal(wireBytes(1024, 1 / 1024), (1024 * PAGE_BYTES) / 1024);
    assert.equal(wireBytes(0, 1 / 1024), 1);
    assert.equal(wireBytes(10, 1), 10 * PAGE_BYTES);
  });
});

describe("sim faults", () => {
  it("fails one migration, at its phase and side only", () => {
    const f: SimFaults = { migration: { phase: "stopcopy", side: "receive" } };
    assert.equal(takeMigrationFault(f, "send", "stopcopy"), false);
    assert.equal(takeMigrationFault(f, "receive", "precopy"), false);
    assert.equal(takeMigrationFault(f, "receive", "stopcopy"), true);
    assert.equal(f.migration, undefined);
    assert.equal(takeMigrationFault(f, "receive", "stopcopy"), false, "used up");
  });

  it("delays calls, and hangs the listed methods only", async () => {
    const t0 = Date.now();
    await callFaults({ delayMs: 30, hang: ["create"] }, "destroy");
    assert.ok(Date.now() - t0 >= 25);
    const hung = await Promise.race([
      callFaults({ hang: ["create"] }, "create").then(() => "returned"),
      new Promise((r) => setTimeout(() => r("hung"), 50)),
    ]);
    assert.equal(hung, "hung");
  });
});
