// Every benchmark at a small size, so they keep working between full runs
// (`npm run bench`). The checks are on what the numbers must satisfy, not on
// speed: no timing assertions.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { generate, greedy, optimum, ours, runBalance } from "../src/balance.ts";
import { runDrain } from "../src/drain.ts";
import { machine } from "../src/machine.ts";
import { runMigration } from "../src/migration.ts";
import { runPrecopy } from "../src/precopy.ts";
import { render } from "../src/report.ts";
import { loadResult, renderSaved } from "../src/results.ts";
import { runScale } from "../src/scale.ts";

describe("benchmarks at a small size", () => {
  it("pre-copy: never faster than the physical bound; auto-converge never makes downtime worse", () => {
    const { rows } = runPrecopy("small");
    assert.ok(rows.length > 0);
    for (const r of rows) {
      assert.ok(r.totalS >= r.boundS, `${r.memoryGiB} GiB at ${r.dirtyFraction}: faster than the link`);
      assert.ok(r.downtimeMs > 0);
    }
    for (const r of rows.filter((x) => x.autoConverge)) {
      const plain = rows.find(
        (x) => !x.autoConverge && x.memoryGiB === r.memoryGiB && x.dirtyFraction === r.dirtyFraction,
      );
      assert.ok(plain && r.downtimeMs <= plain.downtimeMs + 1e-9);
    }
  });

  it("balancer: the optimum bounds both planners; no cooldown violations on the trace", () => {
    const b = runBalance("small");
    for (const q of b.quality) {
      assert.ok(q.optimum <= q.ours + 1e-9, `optimum above ours: ${JSON.stringify(q)}`);
      assert.ok(q.optimum <= q.greedy + 1e-9);
      assert.ok(q.ours <= q.initial + 1e-12);
    }
    // Each "moves ours needs" is a plan with that budget that really reaches greedy's level, and one move fewer does not.
    assert.ok(b.moves.length > 0);
    for (const x of b.moves) {
      const { hosts, domains } = generate(x.shape, 10, 60, x.seed);
      for (const l of x.levels) {
        if (l.oursMoves === undefined) continue;
        assert.ok(ours(hosts, domains, l.oursMoves, 8).projected <= l.imbalance + 1e-12, JSON.stringify(l));
        if (l.oursMoves > 0)
          assert.ok(ours(hosts, domains, l.oursMoves - 1, 8).projected > l.imbalance + 1e-12, JSON.stringify(l));
      }
    }
    assert.equal(b.trace.cooldownViolations, 0);
    assert.ok(b.trace.moves > 0);
    assert.ok(b.decision.ms > 0 && b.decision.moves >= 0);
  });

  it("balancer: never ends above greedy run to where it stops, with as many moves (12 hosts, 80 domains)", () => {
    for (const shape of ["skewed", "hotspot", "fresh-empty"] as const)
      for (const seed of [1, 2, 3, 4, 5]) {
        const { hosts, domains } = generate(shape, 12, 80, seed);
        const g = greedy(hosts, domains, 100_000);
        const o = ours(hosts, domains, g.moves.length, 8);
        assert.ok(o.projected <= g.projected + 1e-12, `${shape} ${seed}: ${o.projected} > greedy ${g.projected}`);
      }
  });

  it("exhaustive optimum: finds the known best move on a tiny cluster", () => {
    const { hosts, domains } = generate("skewed", 3, 6, 3);
    const one = optimum(hosts, domains, 1);
    const plan = ours(hosts, domains, 1);
    assert.ok(one <= plan.projected + 1e-12);
    assert.ok(optimum(hosts, domains, 2) <= one + 1e-12, "more moves never hurt the optimum");
  });

  it("pre-copy: auto-converge lowers the downtime where pre-copy does not converge, and only there", () => {
    const { rows } = runPrecopy("small");
    for (const off of rows.filter((x) => !x.autoConverge)) {
      const on = rows.find(
        (x) => x.autoConverge && x.memoryGiB === off.memoryGiB && x.dirtyFraction === off.dirtyFraction,
      );
      assert.ok(on, `a row with auto-converge for ${off.memoryGiB} GiB at ${off.dirtyFraction}`);
      if (off.dirtyFraction <= 0.5)
        assert.equal(on.downtimeMs, off.downtimeMs, `${off.memoryGiB} GiB at ${off.dirtyFraction}`);
      else assert.ok(on.downtimeMs < off.downtimeMs * 0.75, `${on.downtimeMs} ms vs ${off.downtimeMs} ms`);
    }
  });

  it("sustained rate: the highest step whose domains all ran with p95 under 1 s, and what the goal's rate asks", () => {
    const m = machine();
    const none = {
      precopy: undefined,
      balance: undefined,
      migration: undefined,
      labMigration: undefined,
      drain: undefined,
    };
    const pct = (p95: number) => ({ p50: p95 / 2, p95, p99: p95 });
    const step = (rate: number, p95: number, ran = 100) => ({
      rate,
      domains: 100,
      ran,
      latencyS: pct(p95),
      scheduledS: pct(p95),
      startedS: pct(p95),
      wallS: 10,
      coresBusy: 1,
      apiServerCpuMsPerDomain: 5,
      apiRequestsPerDomain: 7,
      terminatedWatchers: rate > 30 ? 12 : 0,
    });
    const capacityRun = (steps: unknown[]) => ({
      hosts: 1000,
      domains: 300,
      idleFleet: {
        cores: 0.25,
        by: { apiServer: 0.15, etcd: 0.01, operator: 0.01, agents: 0.08 },
        requestsPerS: [{ key: "PUT leases", perDomain: 100 }],
      },
      steps,
    });
    const capacity = (...runs: unknown[][]) => ({
      machine: m,
      size: "full",
      result: { runs: runs.map(capacityRun) },
    });
    const kubexen = {
      hosts: 1000,
      domains: 300,
      rate: 100,
      ran: 300,
      endS: 10,
      allRunningS: 10,
      latencyS: pct(2),
      scheduledS: pct(1),
      startedS: pct(1),
      apiRequestsPerDomain: 6,
      apiRequestsByKind: [],
      latencies: [1, 2],
      apiServer: { cpuSeconds: 4.5 },
      etcd: { cpuSeconds: 0.3 },
      operator: { cpuSeconds: 0.6, peakRssMiB: 100 },
      agentsProcess: { cpuSeconds: 2.1, rssMiB: 100 },
    };
    const scale = { machine: m, size: "full", result: { runs: [] as unknown[] } };
    const md = (steps: unknown[][], runs: unknown[] = []) =>
      render({ ...none, scale: { ...scale, result: { runs } }, capacity: capacity(...steps) }).markdown;
    // 20/s kept p95 under 1 s; 40/s did not; 30/s did but not every domain ran.
    const out = md([[step(20, 0.4), step(30, 0.5, 99), step(40, 3)]], [kubexen]);
    assert.match(out, /Highest rate with p95 under 1 s at 1000 hosts: \*\*20\/s\*\* \(p95 0\.40 s/);
    assert.match(
      out,
      /idle fleet \(no domain yet\) kept 0\.25 of the machine's \d+ cores busy: the API server 0\.15, the agents' process 0\.08, .*requests a second: PUT leases 100\./,
    );
    // (4.5 + 0.3 + 0.6 + 2.1) s / 300 domains = 25 ms; at 100/s, 2.5 cores.
    assert.match(out, /spent 25\.0 ms of CPU per domain over all these processes, 2\.5 cores of work a second/);
    assert.match(
      out,
      /\| 30 \| 100 \| 0\.25 \| 0\.50 \| 0\.50 \| 0\.50 \| 0\.50 \| 10 \(99 of 100 ran\) \| 1\.00 \| 5\.0 \| 7\.0 \| 0 \|/,
    );
    assert.match(out, /\| 40 \| 200 \| .* \| 7\.0 \| 12 \|/);
    assert.match(md([[step(20, 1.5)]]), /No step kept p95 under 1 s at 1000 hosts\./);
    // Two runs that differ near the knee: each says its own, in the same cells.
    const two = md([
      [step(20, 0.4), step(40, 3)],
      [step(20, 0.3), step(40, 0.9)],
    ]);
    assert.match(two, /at 1000 hosts: \*\*20\/s \/ 40\/s\*\* \(p95 0\.40 s \/ 0\.90 s/);
    assert.match(two, /\| 40 \| 100 \| 1\.50 \/ 0\.45 \| 3\.00 \/ 0\.90 \|/);
  });

  it("docs/benchmarks.md and its charts are what the saved results render", () => {
    const root = join(import.meta.dirname, "../..");
    for (const name of [
      "precopy",
      "balance",
      "migration",
      "lab-migration",
      "drain",
      "scale",
      "floor",
      "capacity",
      "soak",
    ])
      assert.ok(loadResult(root, name), `bench/results/${name}.json is kept in the repository`);
    const r = renderSaved(root);
    const again = "render it again: npm run bench -- --only report";
    assert.equal(readFileSync(join(root, "docs/benchmarks.md"), "utf8"), r.markdown, again);
    for (const [file, svg] of r.charts)
      assert.equal(readFileSync(join(root, "docs/benchmarks", file), "utf8"), svg, `${file}: ${again}`);
  });

  it("migration overhead, drain and scale run against a real control plane", async () => {
    const mg = await runMigration("small");
    assert.equal(mg.samples.toFirstByte.length, mg.migrations);
    for (const x of [...mg.samples.toFirstByte, ...mg.samples.afterLastByte]) assert.ok(Number.isFinite(x) && x >= 0);
    const dr = await runDrain("small");
    assert.ok(dr.ratio >= 1, `a drain cannot beat its lower bound: ${JSON.stringify(dr)}`);
    const sc = await runScale({ hosts: 3, domains: 30, rate: 30, timeoutS: 300 });
    assert.equal(sc.ran, 30);
    assert.equal(sc.latencies.length, 30);
    assert.ok(sc.allRunningS !== undefined && sc.allRunningS > 0);
    assert.ok(sc.apiRequestsByKind.some((k) => k.key === "POST xendomains" && k.perDomain === 1));
    assert.ok(sc.latencies.every((x) => Number.isFinite(x) && x > 0));
    assert.ok(sc.apiRequestsPerDomain > 0 && (sc.operator?.peakRssMiB ?? 0) > 0);
    // The floor: no kubexen process; exactly one create and two status applies per domain, and each
    // idle watch holds the domains bound to its host.
    const fl = await runScale({ hosts: 3, domains: 30, rate: 30, timeoutS: 120, floor: { watchers: 3 } });
    assert.equal(fl.ran, 30);
    assert.equal(fl.operator, undefined);
    const per = (key: string) => fl.apiRequestsByKind.find((k) => k.key === key)?.perDomain;
    assert.equal(per("POST xendomains"), 1);
    assert.equal(per("APPLY xendomains/status"), 2);
    assert.deepEqual(fl.floorWatchesHeld, [10, 10, 10]);
    // Stepped: each step measured on its own, after the idle fleet's cost.
    const st = await runScale({
      hosts: 3,
      domains: 30,
      rate: 0,
      timeoutS: 120,
      stepped: { rates: [10, 30], idleS: 1 },
    });
    assert.equal(st.ran, 30);
    assert.deepEqual(
      st.steps?.map((s) => [s.rate, s.domains, s.ran]),
      [
        [10, 15, 15],
        [30, 15, 15],
      ],
    );
    for (const s of st.steps ?? []) {
      assert.ok(Number.isFinite(s.latencyS.p95) && s.latencyS.p95 > 0 && s.wallS > 0, JSON.stringify(s));
      assert.ok(s.coresBusy > 0 && s.apiServerCpuMsPerDomain > 0, JSON.stringify(s));
      // Each domain's create at least; no watch closed on an idle 3-host cluster.
      assert.ok(s.apiRequestsPerDomain >= 1 && s.terminatedWatchers === 0, JSON.stringify(s));
    }
    const idle = st.idleFleet;
    assert.ok(idle && idle.by.apiServer > 0, JSON.stringify(idle));
    assert.deepEqual(Object.keys(idle.by).sort(), ["agents", "apiServer", "etcd", "operator"]);
    const sum = Object.values(idle.by).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(idle.cores - sum) < 1e-9, "the idle cores are the processes' sum");
    const m = machine();
    const out = render({
      precopy: { machine: m, size: "small", result: runPrecopy("small") },
      balance: undefined,
      migration: { machine: m, size: "small", result: mg },
      labMigration: undefined,
      drain: { machine: m, size: "small", result: dr },
      scale: { machine: m, size: "small", result: { runs: [sc, { ...sc, rate: 0 }] } },
      floor: { machine: m, size: "small", result: { runs: [{ ...fl, floor: { watchers: 0 } }, fl] } },
      capacity: { machine: m, size: "small", result: { runs: [st, st] } },
    });
    assert.match(out.markdown, /### Sustained rate at 3 hosts/);
    // Two runs: each cell holds both runs' figures.
    assert.match(out.markdown, /\| 30 \| 15 \| [\d.]+ \/ [\d.]+ \| /);
    assert.match(out.markdown, /## 1\. Control plane at scale/);
    assert.match(out.markdown, /\| POST xendomains \| 1\.00 \|/);
    assert.match(out.markdown, /### The API server's floor/);
    assert.match(out.markdown, /With no watch the API server alone spends \d+\.\d ms of CPU per domain/);
    assert.match(out.markdown, /Not run yet: `npm run bench -- --only balance`/);
    assert.ok(out.charts.every(([, svg]) => svg.startsWith("<svg")));
  });
});
