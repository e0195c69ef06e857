// Turns the benchmarks' JSON results into docs/benchmarks.md and its charts.
import type { Machine } from "./machine.ts";
import { histogram, lineChart, type Series } from "./svg.ts";

type Saved<T> = { machine: Machine; size: string; result: T } | undefined;
// biome-ignore lint/suspicious/noExplicitAny: results are read back from JSON files.
type Any = any;

const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");
/** Seconds of a scale run's latency; null or Infinity is a domain that never ran. */
const sec = (x: number | null, d = 2) => (x === null || !Number.isFinite(x) ? "did not run" : f(x, d));
/** When a scale run's last domain ran, or how far it got before the run ended. */
const ranAfter = (s: Any) =>
  s.allRunningS != null ? f(s.allRunningS, 1) : `${s.ran} of ${s.domains} after ${f(s.endS, 0)}`;
/** A scale run's CPU seconds over every process: the API server, etcd, the operator, the agents' process. */
const cpuSeconds = (s: Any) =>
  s.apiServer.cpuSeconds + s.etcd.cpuSeconds + s.operator.cpuSeconds + s.agentsProcess.cpuSeconds;
const where = (s: { machine: Machine; size: string }) =>
  `_${s.size} size; ${s.machine.cores} cores (${s.machine.cpuModel}), ${s.machine.memoryGiB} GiB, Node ${s.machine.node}, commit ${s.machine.commit}, ${s.machine.date.slice(0, 10)}._`;

export function render(r: {
  precopy: Saved<Any>;
  balance: Saved<Any>;
  migration: Saved<Any>;
  labMigration: Saved<Any>;
  drain: Saved<Any>;
  scale: Saved<Any>;
  floor?: Saved<Any>;
  capacity?: Saved<Any>;
  soak?: Saved<Any>;
}): { markdown: string; charts: Array<[string, string]> } {
  const charts: Array<[string, string]> = [];
  const md: string[] = [
    "# Benchmarks",
    "",
    "Written by `npm run bench` (bench/src/main.ts) from the results in bench/results/. Each section",
    "names the machine and commit it ran on. The test suite runs every benchmark at a small size",
    "(bench/test/) so they keep working; these are the full runs.",
    "",
  ];
  const notRun = (what: string) => md.push(`Not run yet: \`npm run bench -- --only ${what}\`.`, "");

  md.push("## 1. Control plane at scale", "");
  if (r.scale) {
    const runs = (r.scale.result.runs ?? []) as Any[];
    // Every process of the run: its CPU seconds over the run's wall time (the operator's from its start).
    const coresBusy = (s: Any) => cpuSeconds(s) / s.endS;
    const row = (s: Any) =>
      `| ${s.hosts} | ${s.domains} | ${s.rate || "burst"} | ${sec(s.latencyS.p50)} | ${sec(s.latencyS.p95)} | ${sec(s.latencyS.p99)} | ${ranAfter(s)} | ${sec(s.scheduledS.p50)} / ${sec(s.scheduledS.p95)} | ${sec(s.startedS.p50)} / ${sec(s.startedS.p95)} | ${f(s.apiRequestsPerDomain, 1)} | ${f(s.apiServer.cpuSeconds, 0)} | ${f(s.operator.peakRssMiB, 0)} | ${f(s.operator.cpuSeconds, 1)} | ${f(s.agentsProcess.rssMiB, 0)} | ${f(s.etcd.cpuSeconds, 0)} | ${f(s.agentsProcess.cpuSeconds, 0)} | ${f(coresBusy(s), 2)} |`;
    const steady = runs.filter((s) => s.rate > 0);
    const largest = steady.reduce<Any>((a, s) => (!a || s.domains > a.domains ? s : a), undefined);
    md.push(
      where(r.scale),
      "",
      "| hosts | domains | creates/s | p50 s | p95 s | p99 s | all Running after s | scheduled p50 / p95 s | started p50 / p95 s | API requests per domain | API server CPU s | operator peak RSS MiB | operator CPU s | agents+sims process RSS MiB | etcd CPU s | agents+sims CPU s | cores busy |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
      ...runs.map(row),
      "",
      "Latency: from a XenDomain's create request to a watch seeing it Running, split into",
      "scheduled (create to bound to a host) and started (bound to Running: the agent's create and",
      "report). Everything runs on this machine: the API server, etcd, the operator, and every agent",
      "with its sim host in one process; all authenticate by bearer token, as the chart's service",
      "accounts do. The operator runs with the Node options the chart gives it" +
        (largest?.operator?.nodeOptions ? ` (\`${largest.operator.nodeOptions}\`)` : "") +
        ". A run that had not finished after 600 s says how many of its domains ran." +
        ` Cores busy: the CPU seconds of the API server, etcd, the operator and the agents' process over the run's wall time (the machine has ${r.scale.machine.cores}).`,
      "Anchors: KubeVirt's CI, 100 VMs at 10/s, p50 ≈ 17 s, p95 ≈ 28 s; its density test allows 15",
      "min for 8,000 VMs; its controller uses about 60 MB. Goals: p95 < 1 s at 100/s, 10,000",
      "domains Running within 5 minutes, operator RSS < 300 MB at 10,000 domains.",
      "",
    );
    // Repeated runs at the largest size are all shown: on a saturated machine they vary.
    const repeats = steady.filter(
      (s) => s.hosts === largest?.hosts && s.domains === largest?.domains && s.rate === largest?.rate,
    );
    const each = (g: (s: Any) => string) => repeats.map(g).join(" / ");
    const verdict = (ok: (s: Any) => boolean) => {
      const n = repeats.filter(ok).length;
      return n === repeats.length ? "met" : n === 0 ? "not met" : `met in ${n} of ${repeats.length} runs`;
    };
    if (largest) {
      md.push(
        `API requests per domain by kind (${largest.hosts} hosts, ${largest.domains} domains, ${largest.rate}/s; every request the API server served during the run, agents' Lease renewals and host reports included, divided by the domains):`,
        "",
        "| request | per domain |",
        "| --- | --- |",
        ...(largest.apiRequestsByKind as Array<{ key: string; perDomain: number }>)
          .filter((k) => k.perDomain >= 0.01)
          .map((k) => `| ${k.key} | ${f(k.perDomain, 2)} |`),
        "",
        ...(largest.terminatedWatchers !== undefined
          ? [
              `Watches the API server closed because their buffer filled (apiserver_terminated_watchers_total; each comes back as a new WATCH): ${each((s) => String(s.terminatedWatchers ?? "n/a"))}. The API server indexes no field selector of a custom resource, so every XenDomain event is queued to each agent's watch, and filtered there; with its CPU saturated, those queues overflow, and the watches restarting add to the load, which is why runs of the same size differ.`,
              "",
            ]
          : []),
        `Against the goals (${largest.hosts} hosts, ${largest.domains} domains${repeats.length > 1 ? `, ${repeats.length} runs` : ""}): p95 at ${largest.rate}/s is ${each((s) => sec(s.latencyS.p95))} s (goal < 1 s: ${verdict((s) => s.latencyS.p95 < 1)}); all ran after ${each((s) => (s.allRunningS != null ? f(s.allRunningS, 0) : `(${s.ran} of ${s.domains} within ${f(s.endS, 0)})`))} s (goal 10,000 within 300 s: ${verdict((s) => s.domains >= 10000 && s.allRunningS != null && s.allRunningS <= 300)}); operator peak RSS ${each((s) => f(s.operator.peakRssMiB, 0))} MiB (goal < 300 MiB: ${verdict((s) => s.operator.peakRssMiB < 300)}).`,
        "",
        "![latency histogram](benchmarks/scale-latency.svg)",
        "",
      );
      charts.push([
        "scale-latency.svg",
        histogram({
          title: `Create to Running, ${largest.hosts} hosts, ${largest.rate}/s`,
          x: "seconds",
          values: largest.latencies,
        }),
      ]);
    }
  } else notRun("scale");
  if (r.floor) floorSection(md, r.floor, (r.scale?.result.runs ?? []) as Any[]);
  if (r.capacity) capacitySection(md, r.capacity, (r.scale?.result.runs ?? []) as Any[]);

  md.push("## 2. Migration orchestration overhead", "", "### On sim hosts", "");
  if (r.migration) {
    const m = r.migration.result;
    md.push(
      where(r.migration),
      "",
      `${m.migrations} migrations of a 256 MiB domain between two sim hosts, one at a time.`,
      "",
      "| interval | p50 ms | p95 ms | max ms |",
      "| --- | --- | --- | --- |",
      `| XenMigration created → first byte sent | ${f(m.toFirstByteMs.p50, 0)} | ${f(m.toFirstByteMs.p95, 0)} | ${f(m.toFirstByteMs.max, 0)} |`,
      `| last byte acknowledged → Succeeded seen by a watch | ${f(m.afterLastByteMs.p50, 0)} | ${f(m.afterLastByteMs.p95, 0)} | ${f(m.afterLastByteMs.max, 0)} |`,
      `| whole migration | ${f(m.totalMs.p50, 0)} | ${f(m.totalMs.p95, 0)} | ${f(m.totalMs.max, 0)} |`,
      "",
      `Goal: under 100 ms each on sim: at the median ${m.toFirstByteMs.p50 < 100 && m.afterLastByteMs.p50 < 100 ? "met" : "not met"}, at p95 ${m.toFirstByteMs.p95 < 100 && m.afterLastByteMs.p95 < 100 ? "met" : "not met"}. The first interval holds admission, target choice, the`,
      "target agent's readiness check and the source agent's TLS connection; the second the",
      "target's and source's reports and the handover.",
      "",
    );
  } else notRun("migration");

  md.push("### On real Xen hosts", "");
  if (r.labMigration) {
    const m = r.labMigration.result;
    const total = (g: (x: Any) => number) => (m.samples as Any[]).reduce((a, x) => a + g(x), 0);
    const mibps = total((x) => x.wireBytes) / 2 ** 20 / (total((x) => x.wireMs) / 1000);
    const share = total((x) => x.toFirstByteMs + x.afterLastByteMs) / total((x) => x.totalMs);
    const row = (what: string, x: Any) => `| ${what} | ${f(x.p50, 0)} | ${f(x.p95, 0)} | ${f(x.max, 0)} |`;
    md.push(
      where(r.labMigration),
      "",
      `${m.migrations} live migrations of a ${m.memoryMiB} MiB PVH guest back and forth between two Xen 4.17 hosts under QEMU (${m.accel === "kvm" ? "KVM" : "TCG: emulated CPUs"}, one CPU each), with the operator and the control plane on this machine and a node agent in each host's dom0.`,
      "",
      "| interval | p50 ms | p95 ms | max ms |",
      "| --- | --- | --- | --- |",
      row("XenMigration created → the stream's TCP connection opened", m.toConnectMs),
      row("XenMigration created → the source's first byte (TLS ClientHello)", m.toConnectionFirstByteMs),
      row("XenMigration created → first byte of xl's stream", m.toFirstByteMs),
      row("first to last byte of the stream on the wire", m.wireMs),
      row("last byte on the wire → Succeeded seen by a watch", m.afterLastByteMs),
      row("whole migration", m.totalMs),
      "",
      "Measured on the wire: tcpdump records the frames between the hosts (QEMU's links are UDP on",
      "this machine's loopback) with the same clock that stamps the creation and the watch. The",
      "first byte of xl's stream is the source's first byte after the receiver's banner; the last",
      "byte ends the handover. Before the connection: admission, the operator's checks, the target",
      "agent's readiness check (`xl info` in its dom0) and the source agent's reading of the",
      "target's endpoint. Between the connection and xl's first byte: the TLS handshake and the",
      "stream's hello in Node on the emulated dom0s, the source's `xl info` and `xl list -l`, and",
      "both xl processes starting. After the last byte: both agents' reports and the operator's",
      "verdict.",
      "",
      `The stream moved ${f(mibps, 1)} MiB/s on average (TLS and xl each on one emulated CPU); the orchestration (creation to xl's first byte, and last byte to Succeeded) is ${f(share * 100, 1)}% of the whole migration. The 100 ms goal is for sim hosts; here every step in dom0 (Node, TLS, each xl process) runs on one emulated CPU.`,
      "",
    );
  } else notRun("lab-migration");

  md.push("## 3. Drain", "");
  if (r.drain) {
    const d = r.drain.result;
    md.push(
      where(r.drain),
      "",
      `A host with ${d.domains} domains of ${d.memoryMiB} MiB drained to three others under the default`,
      `limits (5 per cluster, 2 out of a host), links of ${d.linkMiBps} MiB/s (sim, real time).`,
      "",
      "| makespan s | lower bound s | ratio |",
      "| --- | --- | --- |",
      `| ${f(d.makespanS, 1)} | ${f(d.boundS, 1)} | ${f(d.ratio)} |`,
      "",
      `Lower bound: memory moved / (2 outbound streams × link bandwidth). Goal: within 1.2×: ${d.ratio <= 1.2 ? "met" : "not met"}.`,
      "",
    );
    if (d.meanTransferS !== undefined)
      md.push(
        `Where the time goes: a transfer takes ${f(d.meanTransferS)} s on average (${f(d.idealTransferS)} s is memory / link; the`,
        `rest is pre-copy sending dirtied pages again); the first starts ${f(d.firstTransferAfterS)} s after the XenMaintenance is`,
        `created; of the two streams' ${f(2 * d.makespanS, 1)} s, ${f(d.betweenTransfersS, 1)} s pass between transfers (admission,`,
        "target choice, the target's readiness, the handover and the reports that end one migration and start the next).",
        "",
      );
  } else notRun("drain");

  md.push("## 4. Balancer quality", "");
  if (r.balance) {
    const b = r.balance.result;
    const groups = new Map<string, Any[]>();
    for (const q of b.quality) {
      const key = `${q.hosts} hosts, ~${q.domains} domains`;
      groups.set(key, [...(groups.get(key) ?? []), q]);
    }
    md.push(
      where(r.balance),
      "",
      "Imbalance (standard deviation of normalised host load) after at most k moves, mean over shapes and seeds; the exact optimum by exhaustive search.",
      "",
    );
    md.push(
      "| instances | k | initial | ours | greedy (DRS-style) | optimum | ours vs optimum, worst case |",
      "| --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const [key, rows] of groups) {
      const ks = [...new Set(rows.map((x: Any) => x.k))] as number[];
      const series: Series[] = [
        { name: "ours", points: [] },
        { name: "greedy", points: [] },
        { name: "optimum", points: [] },
      ];
      for (const k of ks) {
        const at = rows.filter((x: Any) => x.k === k);
        const mean = (fld: string) => at.reduce((s: number, x: Any) => s + x[fld], 0) / at.length;
        const worst = Math.max(
          ...at.map((x: Any) =>
            x.optimum > 1e-9 ? x.ours / x.optimum - 1 : x.ours > 1e-9 ? Number.POSITIVE_INFINITY : 0,
          ),
        );
        md.push(
          `| ${key} | ${k} | ${f(mean("initial"), 4)} | ${f(mean("ours"), 4)} | ${f(mean("greedy"), 4)} | ${f(mean("optimum"), 4)} | +${f(worst * 100, 1)}% |`,
        );
        series[0]?.points.push([k, mean("ours")]);
        series[1]?.points.push([k, mean("greedy")]);
        series[2]?.points.push([k, mean("optimum")]);
      }
      const file = `balance-${key.replace(/[^0-9a-z]+/gi, "-")}.svg`;
      charts.push([
        file,
        lineChart({ title: `Imbalance against moves (${key})`, x: "move budget k", y: "imbalance", series }),
      ]);
      md.push("", `![imbalance against moves, ${key}](benchmarks/${file})`, "");
      md.push(
        "| instances | k | initial | ours | greedy (DRS-style) | optimum | ours vs optimum, worst case |",
        "| --- | --- | --- | --- | --- | --- | --- |",
      );
    }
    md.pop();
    md.pop();
    const worstAll = Math.max(...b.quality.map((x: Any) => (x.optimum > 1e-9 ? x.ours / x.optimum - 1 : 0)));
    const atEnd = (x: Any) => x.levels[x.levels.length - 1];
    const fewer = b.moves.filter(
      (x: Any) => atEnd(x).oursMoves !== undefined && atEnd(x).oursMoves < x.greedyMoves,
    ).length;
    const levels = b.moves.flatMap((x: Any) => x.levels);
    const fewerLevels = levels.filter((l: Any) => l.oursMoves !== undefined && l.oursMoves < l.greedyMoves).length;
    const saved = levels.reduce(
      (s: number, l: Any) => s + (l.oursMoves === undefined ? 0 : l.greedyMoves - l.oursMoves),
      0,
    );
    const notWorse = b.moves.filter((x: Any) => x.oursImbalance <= x.greedyImbalance + 1e-12).length;
    md.push(
      "",
      `Worst case over every small instance and budget: ours is ${f(worstAll * 100, 1)}% above the optimum (goal within 5%: ${worstAll <= 0.05 ? "met" : "not met"}).`,
      "",
      `Fewer moves than greedy for the same imbalance: greedy (DRS-style) repeats the single best move until none helps, at most 8 per host; ours gets as many moves under the same limits. To reach the imbalance where greedy stops, ours needs fewer moves on ${fewer} of ${b.moves.length} clusters (goal: ${fewer === b.moves.length ? "met" : "not met"}); to reach greedy's imbalance after 8, 16, 32 moves and where it stops, fewer on ${fewerLevels} of ${levels.length} levels, ${saved} moves saved in all. With as many moves as greedy made, ours ends at an imbalance at least as low on ${notWorse} of ${b.moves.length}.`,
      "",
      "Moves ours needs to reach greedy's imbalance after k moves (— : not within greedy's total):",
      "",
      "| shape | seed | greedy stops after | k = 8 | k = 16 | k = 32 | where greedy stops | imbalance there: greedy / ours with as many moves |",
      "| --- | --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const x of b.moves) {
      const at = (k: number) => {
        const l = x.levels.find((y: Any) => y.greedyMoves === k);
        return l ? (l.oursMoves ?? "—") : "";
      };
      md.push(
        `| ${x.shape} | ${x.seed} | ${x.greedyMoves} | ${at(8)} | ${at(16)} | ${at(32)} | ${atEnd(x).oursMoves ?? "—"} | ${f(x.greedyImbalance, 4)} / ${f(x.oursImbalance, 4)} |`,
      );
    }
    const d = b.decision;
    const t = b.trace;
    md.push(
      "",
      `Decision time at ${d.hosts} hosts and ${d.domains} domains (median of runs): **${f(d.ms, 0)} ms** for ${d.moves} moves (imbalance ${f(d.before, 4)} → ${f(d.after, 4)}). Goal: under 1 s.`,
      "",
      `24-hour drifting-load trace (${t.hosts} hosts, ${t.domains} domains, ${t.passes} passes of 5 minutes, cooldown 30 minutes): ${t.moves} moves, **${t.cooldownViolations} domains moved twice within the cooldown**; mean imbalance before each pass ${f(t.meanImbalanceBefore, 4)}, after ${f(t.meanImbalanceAfter, 4)}.`,
      "",
    );
  } else notRun("balance");

  md.push("## 5. Live migration on the sim model", "");
  if (r.precopy) {
    const p = r.precopy.result;
    const upToHalf = (p.rows as Any[]).filter((x) => x.dirtyFraction <= 0.5);
    const worstUpToHalf = Math.max(...upToHalf.map((x) => x.downtimeMs));
    md.push(
      where(r.precopy),
      "",
      `Pre-copy at ${p.bandwidthMiBps} MiB/s (10 GbE), at most 5 rounds before stop-and-copy (Xen's default); the guest rewrites up to a quarter of its memory; dirty rate as a fraction of the bandwidth. Converged: the pages dirtied in a round fell below Xen's threshold of 50 before the round limit; otherwise the stop-and-copy after the fifth round sends what is left. Auto-converge (hypervisor/src/autoconverge.ts) caps the guest's CPU by 20% once half its memory has been sent again, 10% more for every further quarter. Up to half the bandwidth each round leaves less to send, so even without converging the downtime stays at most ${f(worstUpToHalf, 0)} ms, and auto-converge changes nothing there; the rows at 0.75 and 1 show what it does for a guest whose dirty pages outpace pre-copy.`,
      "",
    );
    md.push(
      "| memory GiB | dirty rate | auto-converge | bound s | total s | total / bound | downtime ms | rounds | converged |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const x of p.rows)
      md.push(
        `| ${x.memoryGiB} | ${f(x.dirtyFraction)} | ${x.autoConverge ? "yes" : "no"} | ${f(x.boundS)} | ${f(x.totalS)} | ${f(x.overBound)} | ${f(x.downtimeMs, 0)} | ${x.rounds} | ${x.converged ? "yes" : "no"} |`,
      );
    const mems = [...new Set(p.rows.map((x: Any) => x.memoryGiB))] as number[];
    const series: Series[] = [];
    for (const ac of [false, true])
      for (const mg of [mems[0], mems.at(-1)])
        series.push({
          name: `${mg} GiB${ac ? " +AC" : ""}`,
          points: p.rows
            .filter((x: Any) => x.memoryGiB === mg && x.autoConverge === ac)
            .map((x: Any) => [x.dirtyFraction, x.downtimeMs]),
        });
    charts.push([
      "precopy-downtime.svg",
      lineChart({
        title: "Downtime against dirty rate",
        x: "dirty rate / bandwidth",
        y: "downtime ms",
        series,
        logY: true,
      }),
    ]);
    md.push(
      "",
      "![downtime against dirty rate](benchmarks/precopy-downtime.svg)",
      "",
      "Anchors: Clark et al. (NSDI 2005) report 60 ms and 210 ms downtimes; Google 50 ms median, 300 ms p99.",
      "",
    );
  } else notRun("precopy");

  md.push("## 6. Soak under chaos", "");
  if (r.soak) soakSection(md, r.soak);
  else notRun("soak");
  return { markdown: `${md.join("\n")}\n`, charts };
}

/** Section 1's floor: the API server's own cost of the same load with no kubexen process (scale.ts). */
function floorSection(md: string[], saved: NonNullable<Saved<Any>>, kubexen: Any[]): void {
  const runs = (saved.result.runs ?? []) as Any[];
  const msPer = (s: Any) => (s.apiServer.cpuSeconds / s.domains) * 1000;
  // A burst has no rate to multiply by: n/a.
  const cores = (s: Any) => (s.rate > 0 ? (msPer(s) / 1000) * s.rate : Number.NaN);
  md.push(
    "### The API server's floor",
    "",
    where(saved),
    "",
    "The same load with no kubexen process at all: the benchmark creates each XenDomain and, right after,",
    "binds it and reports it Running with the scheduler's and the agent's status applies: the three",
    "writes any design needs per domain, with none of the operator's or agents' own work (reads,",
    "events, Leases, host reports). Idle watches select `status.host=` of one host each, as the",
    "agents' do, and hold nothing but their own domains.",
    "",
    "| idle watches | domains | creates/s | p50 s | p95 s | p99 s | all Running after s | API requests per domain | API server CPU s | per domain ms | cores at that rate | etcd CPU s | watches terminated |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...runs.map(
      (s) =>
        `| ${s.floor?.watchers ?? 0} | ${s.domains} | ${s.rate || "burst"} | ${sec(s.latencyS.p50)} | ${sec(s.latencyS.p95)} | ${sec(s.latencyS.p99)} | ${ranAfter(s)} | ${f(s.apiRequestsPerDomain, 1)} | ${f(s.apiServer.cpuSeconds, 0)} | ${f(msPer(s), 1)} | ${f(cores(s), 2)} | ${f(s.etcd.cpuSeconds, 0)} | ${s.terminatedWatchers ?? "n/a"} |`,
    ),
    "",
  );
  const none = runs.find((s) => (s.floor?.watchers ?? 0) === 0);
  const most = runs.reduce<Any>((a, s) => (!a || s.floor.watchers > a.floor.watchers ? s : a), undefined);
  if (none && most && most !== none)
    md.push(
      `Cores at that rate: the API server's CPU per domain times the creates per second, on a machine of ${saved.machine.cores}. ` +
        `With no watch the API server alone spends ${f(msPer(none), 1)} ms of CPU per domain, ${f(cores(none), 2)} cores at ${none.rate}/s, ` +
        `before etcd, the operator or any agent has run; with ${most.floor.watchers} agent-style watches, ${f(msPer(most), 1)} ms, ${f(cores(most), 2)} cores. ` +
        `The floor's own p95 at ${most.rate}/s with ${most.floor.watchers} watches is ${sec(most.latencyS.p95)} s ` +
        `(the goal for the whole system is < 1 s).`,
      "",
    );
  // kubexen's own runs at the floor's size: what it adds to the floor, and where.
  const same = kubexen.filter(
    (s) => most && s.hosts === most.hosts && s.domains === most.domains && s.rate === most.rate,
  );
  if (most && same.length) {
    const each = (g: (s: Any) => string) => same.map(g).join(" / ");
    md.push(
      `kubexen at the same size (${same.length} run${same.length > 1 ? "s" : ""} above): ${each((s) => f(msPer(s), 1))} ms of API server CPU per domain, ` +
        `${each((s) => f(msPer(s) / msPer(most), 1))}× the floor with ${most.floor.watchers} watches; ` +
        `${each((s) => f(s.apiRequestsPerDomain, 1))} requests per domain against ${f(most.apiRequestsPerDomain, 1)}; ` +
        `${each((s) => String(s.terminatedWatchers ?? "n/a"))} watches terminated against ${most.terminatedWatchers ?? "n/a"}. ` +
        "The difference is kubexen's own traffic (the requests per domain by kind above: every agent's Lease renewal every 10 s, " +
        "the agent's fresh read before a start, events, host reports) and what saturation adds to it: once the machine's cores are busy, " +
        "the API server's per-watch queues overflow and every terminated watch comes back as a new WATCH.",
      "",
    );
  }
}

/** Section 1's sustained rate: the same size created in steps of rising rate (scale.ts, stepped). */
function capacitySection(md: string[], saved: NonNullable<Saved<Any>>, kubexen: Any[]): void {
  const runs = (saved.result.runs ?? []) as Any[];
  const c = runs[0];
  if (!c) return;
  const cores = saved.machine.cores;
  // Several runs: each cell shows every run's figure, " / " between them (near the knee they differ).
  const each = (g: (x: Any) => string) => runs.map(g).join(" / ");
  const idle = (k: string) => each((r) => f(r.idleFleet?.by[k], 2));
  const steps = (c.steps ?? []) as Any[];
  md.push(
    `### Sustained rate at ${c.hosts} hosts`,
    "",
    where(saved),
    "",
    `${c.domains} domains created in ${steps.length} steps of ${steps[0]?.domains ?? 0} at rising rates on ${c.hosts} sim hosts, each step once every domain of the one before runs, each measured on its own${runs.length > 1 ? ` (${runs.length} runs, " / " between them)` : ""}. ` +
      `Before the first, the idle fleet (no domain yet) kept ${each((r) => f(r.idleFleet?.cores, 2))} of the machine's ${cores} cores busy: ` +
      `the API server ${idle("apiServer")}, the agents' process ${idle("agents")}, the operator ${idle("operator")}, etcd ${idle("etcd")}; ` +
      `requests a second: ${((c.idleFleet?.requestsPerS ?? []) as Any[])
        .filter((k) => k.perDomain >= 0.5)
        .map((k) => `${k.key} ${f(k.perDomain, 0)}`)
        .join(", ")}. ` +
      "Cores busy: the CPU seconds of the API server, etcd, the operator and the agents' process over the step's wall time. " +
      "API server CPU and requests per domain: over the step, divided by the step's domains, the idle fleet's share and the running domains' periodic reports included (which is why they are higher at low rates). " +
      "Watches terminated: agents' watches the API server closed during the step because they fell behind (each comes back as a new WATCH).",
    "",
    "| creates/s | domains before the step | p50 s | p95 s | p99 s | scheduled p95 s | started p95 s | step took s | cores busy | API server CPU per domain ms | API requests per domain | watches terminated |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...steps.map((s0, i) => {
      const at = (g: (s: Any) => string) => each((r) => (r.steps[i] ? g(r.steps[i]) : "n/a"));
      return `| ${s0.rate} | ${i * s0.domains} | ${at((s) => sec(s.latencyS.p50))} | ${at((s) => sec(s.latencyS.p95))} | ${at((s) => sec(s.latencyS.p99))} | ${at((s) => sec(s.scheduledS.p95))} | ${at((s) => sec(s.startedS.p95))} | ${at((s) => `${f(s.wallS, 0)}${s.ran < s.domains ? ` (${s.ran} of ${s.domains} ran)` : ""}`)} | ${at((s) => f(s.coresBusy, 2))} | ${at((s) => f(s.apiServerCpuMsPerDomain, 1))} | ${at((s) => f(s.apiRequestsPerDomain ?? Number.NaN, 1))} | ${at((s) => String(s.terminatedWatchers ?? "n/a"))} |`;
    }),
    "",
  );
  // The highest step whose domains all ran with p95 under 1 s, in each run.
  const best = (r: Any) =>
    ((r.steps ?? []) as Any[])
      .filter((s) => s.ran === s.domains && s.latencyS.p95 < 1)
      .reduce<Any>((a, s) => (!a || s.rate > a.rate ? s : a), undefined);
  const verdict = runs.some(best)
    ? `Highest rate with p95 under 1 s at ${c.hosts} hosts: **${each((r) => (best(r) ? `${best(r).rate}/s` : "none"))}** (p95 ${each((r) => (best(r) ? `${sec(best(r).latencyS.p95)} s` : "n/a"))}, ${each((r) => (best(r) ? f(best(r).coresBusy, 2) : "n/a"))} cores busy).`
    : `No step kept p95 under 1 s at ${c.hosts} hosts.`;
  // What the goal's rate asks of the machine: every process's CPU per domain in the full runs at that size.
  const full = kubexen.filter((s) => s.hosts === c.hosts && s.domains === c.domains && s.rate > 0);
  const perDomainMs = (s: Any) => (cpuSeconds(s) / s.domains) * 1000;
  const demand = full.length
    ? ` At ${full[0].rate}/s the runs above spent ${full.map((s) => f(perDomainMs(s), 1)).join(" / ")} ms of CPU per domain over all these processes, ` +
      `${full.map((s) => f((perDomainMs(s) / 1000) * s.rate, 1)).join(" / ")} cores of work a second on a machine of ${cores}: ` +
      "creation outpaces what the machine can do, and latency there is the queue that builds up."
    : "";
  md.push(verdict + demand, "");
}

/** Section 6: live migrations while processes are killed and hosts cut off (soak.ts). */
function soakSection(md: string[], saved: NonNullable<Saved<Any>>): void {
  const s = saved.result;
  const c = s.chaos;
  const ok = s.violations.length === 0;
  md.push(
    where(saved),
    "",
    `${s.migrations} live migrations of ${s.domains} domains of ${s.memoryMiB} MiB between ${s.hosts} sim hosts (links of ${s.linkMiBps} MiB/s in real time; at most ${s.window} XenMigrations not yet ended at once), ` +
      "with every agent, the operator, the API server and etcd as their own processes. Meanwhile the harness, at random moments " +
      `(${f(s.chaosLimits.gapMs[0] / 1000, 1)} to ${f(s.chaosLimits.gapMs[1] / 1000, 1)} s apart, seed ${s.seed}), SIGKILLs the operator or one host's agent and starts it again after up to ${f(s.chaosLimits.downMs[1] / 1000, 1)} s, ` +
      `SIGKILLs the API server and etcd and starts both again, or cuts one agent's path to the API server (a TCP proxy on loopback) for ${f(s.chaosLimits.cutMs[0] / 1000, 0)} to ${f(s.chaosLimits.cutMs[1] / 1000, 0)} s. ` +
      "Each sim keeps its domains in its own state directory, so they outlive its agent. The invariants are checked from the sims' own view, not the API's: " +
      "their state files, read on every change as consistent snapshots (two passes that agree), for a domain running on two hosts at once (a paused --incoming copy does not run); " +
      "at the end, every migration Succeeded or Failed, every domain Running on exactly the host it is bound to and nowhere else, booted once (live-migrated, never restarted), " +
      "no --incoming or --migratedaway copy left on any sim, no domain naming a migration as current, and no Lease but the hosts' own.",
    "",
    "| migrations | succeeded | failed | ended otherwise | operator kills | agent kills | API server + etcd restarts | cuts | two running copies seen | invariants broken | snapshots checked | migrations took s | whole run s |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    `| ${s.migrations} | ${s.succeeded} | ${s.failed} | ${s.migrations - s.succeeded - s.failed} | ${c.operator} | ${c.agent} | ${c.api} | ${c.cut} | ${s.overlaps.length} | ${s.violations.length} | ${s.snapshots} | ${f(s.migrationsS, 0)} | ${f(s.durationS, 0)} |`,
    "",
  );
  if (s.selfExits && s.selfExits.operator + s.selfExits.agents > 0)
    md.push(
      `Besides the kills, processes exited by themselves (operator ${s.selfExits.operator}, agents ${s.selfExits.agents}: a process that starts while the API server is down exits); the harness started each again after a second, as kubelet restarts a pod's container.`,
      "",
    );
  if (s.apiDownS.length > 0)
    md.push(
      `The API was unanswered for ${(s.apiDownS as number[]).map((x) => f(x, 1)).join(", ")} s at its restarts (etcd and the API server starting again).`,
      "",
    );
  if (s.failureReasons.length > 0)
    md.push(
      "Why migrations failed (names, UUIDs and numbers folded):",
      "",
      "| failures | reason |",
      "| --- | --- |",
      ...(s.failureReasons as Any[]).map(
        (x) => `| ${x.count} | ${String(x.reason).replaceAll("|", "\\|").replaceAll("\n", " ")} |`,
      ),
      "",
    );
  md.push(
    ok
      ? "Every invariant held."
      : `Invariants broken:\n\n${(s.violations as string[]).map((v) => `- ${v.replaceAll("\n", " ")}`).join("\n")}`,
    "",
  );
}
