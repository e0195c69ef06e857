// Every check and every test, in the order a failure is cheapest to find:
// format and lint, type check, then all test files on Node's test runner
// (unit tests and integration tests against real control planes).
//   node scripts/test.ts [path filter...]   only test files whose path contains a filter
import { spawnSync } from "node:child_process";
import { globSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";

const args = process.argv.slice(2);
// --unit: only tests of pure logic, which start no API server, Xen host, container or process of ours.
const unit = args.includes("--unit");
const filters = args.filter((a) => a !== "--unit");

/** What makes a test file an integration test: it starts real servers, hosts, containers or our programs. */
const REAL_PARTS =
  /ControlPlane|startCluster|XenLab|useContainerApi|startSimFleet|run(Scale|Migration|Drain|LabMigration)\(|(demo|main)\.ts/;

function step(name: string, cmd: string, args: string[]): void {
  const t0 = Date.now();
  const r = spawnSync(cmd, args, { stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`\n${name} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
  console.log(`${name}: ok in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

if (filters.length === 0 && !unit) {
  step("biome", "biome", ["ci", "--reporter=summary", "."]);
  step("typecheck", "tsc", ["-p", "tsconfig.json"]);
}

const files = globSync("*/test/**/*.test.ts", { exclude: (p) => p.includes("node_modules") })
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .filter((f) => !unit || !REAL_PARTS.test(readFileSync(f, "utf8")))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(" ")}`);
  process.exit(1);
}
const concurrency = process.env.KUBEXEN_TEST_CONCURRENCY ?? String(Math.max(2, availableParallelism()));
// The real-Xen lab runs last and alone: its emulated hosts need every core, and on a loaded machine
// their agents' heartbeats could miss their fence timeouts.
const lab = files.filter((f) => f.includes("xenlab"));
const rest = files.filter((f) => !lab.includes(f));
// --test-force-exit: a failed test's open handles must not hang the run; each test gets 15 min at most.
const run = (name: string, list: string[], n: string) =>
  step(name, process.execPath, [
    `--test-concurrency=${n}`,
    "--test-force-exit",
    "--test-timeout=900000",
    "--test-reporter=spec",
    "--test",
    ...list,
  ]);
if (rest.length > 0) run("tests", rest, concurrency);
if (lab.length > 0) run("real-Xen lab", lab, "1");
