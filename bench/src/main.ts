// npm run bench: runs every benchmark (full sizes by default), writes
// bench/results/<name>.json and docs/benchmarks.md with SVG charts in
// docs/benchmarks/. Options: --size small|full, --only a,b, and for the scale
// benchmark --hosts, --domains, --rate (one size), --steady-only, --append; floor is
// the API server's own cost of the same load with no kubexen process; capacity the highest rate
// sustained at the largest size, in steps of rising rate. `--only report` runs
// nothing and renders docs/benchmarks.md again from bench/results/.
// soak: live migrations while the operator, agents, API server and etcd are killed and hosts'
// API access cut (--migrations N, default 1,000; --seed S to repeat a run's choices).
// lab-migration boots two real Xen hosts under QEMU (a few minutes).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runBalance } from "./balance.ts";
import { runDrain } from "./drain.ts";
import { runLabMigration } from "./lab-migration.ts";
import { machine } from "./machine.ts";
import { runMigration } from "./migration.ts";
import { runPrecopy } from "./precopy.ts";
import { loadResult, resultsDir, writeReport } from "./results.ts";
import { runScale } from "./scale.ts";
import { runSoak, soakOptions } from "./soak.ts";

const root = join(import.meta.dirname, "../..");
const { values } = parseArgs({
  options: {
    size: { type: "string", default: "full" },
    only: { type: "string" },
    hosts: { type: "string" },
    domains: { type: "string" },
    rate: { type: "string" },
    "steady-only": { type: "boolean", default: false },
    append: { type: "boolean", default: false },
    migrations: { type: "string" },
    seed: { type: "string" },
  },
});
const size = values.size === "small" ? "small" : "full";
const only = values.only ? new Set(values.only.split(",")) : undefined;
const want = (name: string) => !only || only.has(name);
mkdirSync(resultsDir(root), { recursive: true });
const m = machine();
const save = (name: string, result: unknown) => {
  writeFileSync(join(resultsDir(root), `${name}.json`), `${JSON.stringify({ machine: m, size, result }, null, 2)}\n`);
  console.log(`bench: ${name} done`);
};

if (want("precopy")) save("precopy", runPrecopy(size));
if (want("balance")) save("balance", runBalance(size));
if (want("migration")) save("migration", await runMigration(size));
if (want("drain")) save("drain", await runDrain(size));
// Real Xen hosts under QEMU (e2e/xenlab): minutes, where the others take seconds.
if (want("lab-migration")) save("lab-migration", await runLabMigration(size, join(root, "test-artifacts/bench-lab")));
if (want("scale")) {
  // Each size steady (creates/s) and in one burst; --hosts/--domains/--rate pick one size.
  const sizes = values.hosts
    ? [{ hosts: Number(values.hosts), domains: Number(values.domains ?? 1000), rate: Number(values.rate ?? 100) }]
    : size === "full"
      ? [
          { hosts: 100, domains: 2000, rate: 100 },
          { hosts: 1000, domains: 10000, rate: 100 },
        ]
      : [{ hosts: 5, domains: 100, rate: 50 }];
  // --append adds to the runs saved before (one size at a time on a small machine).
  const runs: unknown[] = values.append ? (loadResult(root, "scale")?.result.runs ?? []) : [];
  for (const sz of sizes)
    for (const rate of values["steady-only"] ? [sz.rate] : [sz.rate, 0]) {
      runs.push(await runScale({ ...sz, rate, timeoutS: 600 }));
      // Saved after every run: a later one that fails keeps the earlier results.
      save("scale", { runs });
      console.log(`bench: scale ${sz.hosts} hosts, ${sz.domains} domains, ${rate || "burst"} done`);
    }
}

if (want("capacity")) {
  // The highest rate the machine sustains at the largest size: 1,000 hosts, 10,000 domains
  // created in steps of rising rate (scale.ts, ScaleOptions.stepped), each measured on its own.
  const sz =
    size === "full"
      ? { hosts: 1000, domains: 10000, stepped: { rates: [10, 20, 30, 40, 50], idleS: 20 } }
      : { hosts: 3, domains: 30, stepped: { rates: [10, 30], idleS: 2 } };
  // --append adds a run to those saved before: near the knee, runs differ.
  const runs: unknown[] = values.append ? (loadResult(root, "capacity")?.result.runs ?? []) : [];
  runs.push(await runScale({ ...sz, rate: 0, timeoutS: 900 }));
  save("capacity", { runs });
}

if (want("floor")) {
  // The API server's floor (scale.ts, ScaleOptions.floor): 10,000 domains at 100/s with no
  // kubexen process, with no watches, one per host of 100 and one per host of 1,000.
  const sizes =
    size === "full"
      ? [0, 100, 1000].map((watchers) => ({ hosts: 1000, domains: 10000, rate: 100, watchers }))
      : [{ hosts: 3, domains: 30, rate: 30, watchers: 3 }];
  const runs: unknown[] = [];
  for (const { watchers, ...sz } of sizes) {
    runs.push(await runScale({ ...sz, timeoutS: 600, floor: { watchers } }));
    save("floor", { runs });
    console.log(`bench: floor with ${watchers} watches done`);
  }
}

if (want("soak")) {
  const o = soakOptions(
    size,
    values.migrations ? Number(values.migrations) : undefined,
    values.seed ? Number(values.seed) : undefined,
  );
  const result = await runSoak(o);
  save("soak", result);
  if (result.violations.length > 0) console.error(`bench: soak broke its invariants:\n${result.violations.join("\n")}`);
}

writeReport(root);
console.log("bench: wrote docs/benchmarks.md");
process.exit(0);
