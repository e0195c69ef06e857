// The soak (bench/src/soak.ts) at a small size: 3 hosts, 20 live migrations,
// the operator and agents SIGKILLed, the API server and etcd restarted and
// hosts' API access cut; the invariants it checks from the sims' own view
// hold. And each check of the end state fails where it should.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { FleetView, SimDomainView } from "@kubexen/e2e";
import { runningTwice, SimStateRecorder, until } from "@kubexen/e2e";
import { machine } from "../src/machine.ts";
import { render } from "../src/report.ts";
import { runSoak, type SoakResult, soakOptions } from "../src/soak.ts";
import {
  CHAOS_KINDS,
  type ChaosKind,
  groupReasons,
  nextChaos,
  type SoakEnd,
  seededRandom,
  soakViolations,
} from "../src/soak-plan.ts";

const dom = (uuid: string, over: Partial<SimDomainView> = {}): SimDomainView => ({
  uuid,
  name: `n-${uuid}`,
  state: "running",
  bootTime: 1,
  ...over,
});

/** An end state that holds: two domains, each running on its host, every migration ended. */
function goodEnd(): SoakEnd {
  return {
    migrations: [
      { name: "m0", phase: "Succeeded" },
      { name: "m1", phase: "Failed", failureReason: "x" },
    ],
    expectedMigrations: 2,
    domains: [
      { name: "d0", phase: "Running", host: "h0", uuid: "u0" },
      { name: "d1", phase: "Running", host: "h1", uuid: "u1" },
    ],
    hosts: ["h0", "h1"],
    leases: ["lease-h0", "lease-h1"],
    leaseOf: (h) => `lease-${h}`,
    view: new Map([
      ["h0", [dom("u0")]],
      ["h1", [dom("u1")]],
    ]),
    boots: () => 1,
    overlaps: [],
  };
}

describe("soak: the checks", () => {
  it("a paused --incoming copy is not a running copy; a second running one is", () => {
    const view: FleetView = new Map([
      ["a", [dom("u")]],
      ["b", [dom("u", { state: "paused", migration: "incoming" })]],
    ]);
    assert.deepEqual([...runningTwice(view)], []);
    view.set("b", [dom("u", { state: "blocked" })]);
    assert.deepEqual([...runningTwice(view)], [["u", ["a", "b"]]]);
  });

  it("the recorder sees, in the sims' state files, a second running copy and a boot, and not an --incoming copy", async () => {
    const dir = mkdtempSync(join(tmpdir(), "soak-recorder-"));
    const file = (h: string) => join(dir, h, `${h}.json`);
    const write = (h: string, domains: SimDomainView[]) => {
      mkdirSync(join(dir, h), { recursive: true });
      // As the sim writes it: whole, by rename.
      writeFileSync(`${file(h)}.tmp`, JSON.stringify({ nextDomid: 2, domains, images: {} }));
      renameSync(`${file(h)}.tmp`, file(h));
    };
    write("a", [dom("u")]);
    write("b", []);
    const rec = new SimStateRecorder(
      new Map([
        ["a", file("a")],
        ["b", file("b")],
      ]),
      20,
    );
    try {
      write("b", [dom("u", { state: "paused", migration: "incoming" })]);
      await until("the incoming copy seen", () => rec.view.get("b")?.length === 1, 5000, 10);
      assert.deepEqual(rec.overlaps, []);
      write("b", [dom("u")]);
      await until("the overlap seen", () => rec.overlaps.length === 1, 5000, 10);
      write("a", []);
      write("b", [dom("u", { bootTime: 2 })]);
      await until("the second boot seen", () => rec.boots("u") === 2, 5000, 10);
      assert.equal(rec.overlaps.length, 1, "one overlap, recorded once");
    } finally {
      rec.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the end state holds only when every invariant does", () => {
    assert.deepEqual(soakViolations(goodEnd()), []);
    const broken: Array<[string, (e: SoakEnd) => void, RegExp]> = [
      ["an overlap seen", (e) => e.overlaps.push("u0 runs on h0 and h1"), /two running copies/],
      ["a migration not ended", (e) => ((e.migrations[0] as { phase?: string }).phase = "Transferring"), /m0 ended/],
      ["a migration missing", (e) => e.migrations.pop(), /1 XenMigrations exist, 2 were created/],
      ["a domain not running", (e) => ((e.domains[0] as { phase?: string }).phase = "Pending"), /d0 is Pending/],
      [
        "an incoming copy left",
        (e) => e.view.get("h1")?.push(dom("u0", { state: "paused", migration: "incoming" })),
        /--incoming copy/,
      ],
      ["a copy on the wrong host", (e) => e.view.set("h0", []), /d0 is bound to h0 and runs on \[\]/],
      ["a copy on two hosts", (e) => e.view.get("h1")?.push(dom("u0")), /runs on \[h0, h1\]/],
      ["a restart", (e) => (e.boots = (u) => (u === "u1" ? 2 : 1)), /d1 booted 2 times/],
      ["a leaked Lease", (e) => e.leases.push("lease-gone"), /Lease lease-gone belongs to no host/],
      [
        "a stuck migration reference",
        (e) => ((e.domains[1] as { migrating?: string }).migrating = "m9"),
        /names migration m9/,
      ],
      ["a domain no object owns", (e) => e.view.get("h0")?.push(dom("u9")), /u9 runs on h0 for no XenDomain/],
    ];
    for (const [what, breakIt, want] of broken) {
      const e = goodEnd();
      breakIt(e);
      const v = soakViolations(e);
      assert.ok(
        v.some((x) => want.test(x)),
        `${what}: ${JSON.stringify(v)}`,
      );
    }
  });

  it("chaos: each kind up to its budget, then nothing", () => {
    const budget = { operator: 2, agent: 3, api: 1, cut: 2 };
    const done = Object.fromEntries(CHAOS_KINDS.map((k) => [k, 0])) as Record<ChaosKind, number>;
    const rand = seededRandom(7);
    const limits = {
      budget,
      gapMs: [10, 20] as [number, number],
      downMs: [0, 5] as [number, number],
      cutMs: [1, 2] as [number, number],
    };
    for (let a = nextChaos(done, limits, ["h0", "h1"], rand); a; a = nextChaos(done, limits, ["h0", "h1"], rand)) {
      assert.ok(a.gapMs >= 10 && a.gapMs <= 20);
      if (a.kind === "agent" || a.kind === "cut") assert.ok(["h0", "h1"].includes(a.host));
      done[a.kind]++;
    }
    assert.deepEqual(done, budget);
  });

  it("failure reasons group without names, UUIDs and numbers", () => {
    assert.deepEqual(
      groupReasons(["target soak-h1 lost: 128 MiB needed", "target soak-h3 lost: 64 MiB needed", undefined]),
      [
        { reason: "target <host> lost: N MiB needed", count: 2 },
        { reason: "(no reason given)", count: 1 },
      ],
    );
  });
});

describe("soak: the report", () => {
  it("renders the counts, the failure reasons and what broke", () => {
    const o = soakOptions("small", 20, 1);
    const result: SoakResult = {
      ...o,
      chaosLimits: o.chaos,
      durationS: 100,
      migrationsS: 60,
      succeeded: 17,
      failed: 2,
      failureReasons: [{ reason: "target <host> cannot receive: N MiB needed", count: 2 }],
      chaos: { operator: 2, agent: 2, api: 1, cut: 2 },
      apiDownS: [12.5],
      overlaps: [],
      snapshots: 500,
      tornReads: 0,
      restarted: 0,
      selfExits: { operator: 1, agents: 0 },
      violations: ["migration m3 ended Aborted"],
    };
    const none = { precopy: undefined, balance: undefined, migration: undefined, labMigration: undefined };
    const md = render({
      ...none,
      drain: undefined,
      scale: undefined,
      soak: { machine: machine(), size: "small", result },
    }).markdown;
    assert.match(md, /## 6\. Soak under chaos/);
    assert.match(md, /\| 20 \| 17 \| 2 \| 1 \| 2 \| 2 \| 1 \| 2 \| 0 \| 1 \| 500 \| 60 \| 100 \|/);
    assert.match(md, /\| 2 \| target <host> cannot receive: N MiB needed \|/);
    assert.match(md, /- migration m3 ended Aborted/);
    assert.match(md, /exited by themselves \(operator 1, agents 0/);
    assert.match(render({ ...none, drain: undefined, scale: undefined }).markdown, /--only soak/);
  });
});

describe("soak: a small run", () => {
  it("20 migrations under every kind of chaos: no two running copies, every migration ends, every domain runs on its host", async () => {
    const o = soakOptions("small");
    const r = await runSoak(o);
    assert.deepEqual(r.violations, [], `seed ${o.seed}`);
    assert.deepEqual(r.overlaps, []);
    assert.deepEqual(r.chaos, o.chaos.budget, "every action of the budget was taken");
    assert.equal(r.succeeded + r.failed, o.migrations);
    assert.ok(r.succeeded > 0, JSON.stringify(r.failureReasons));
    assert.ok(r.snapshots > 100, `the sims' view was checked ${r.snapshots} times`);
    assert.equal(r.apiDownS.length, o.chaos.budget.api);
  });
});
