// The benchmarks' saved results (bench/results/<name>.json, kept in the repository) and the
// report rendered from them, so that docs/benchmarks.md says only what those files hold and
// can be rendered again, and checked, without running anything.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { render } from "./report.ts";

export const resultsDir = (root: string) => join(root, "bench/results");

/** One saved result, or undefined where that benchmark has not run. */
export function loadResult(root: string, name: string) {
  try {
    return JSON.parse(readFileSync(join(resultsDir(root), `${name}.json`), "utf8"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`bench/results/${name}.json: ${(err as Error).message}`, { cause: err });
  }
}

/** docs/benchmarks.md and its charts, as the saved results render them. */
export function renderSaved(root: string): ReturnType<typeof render> {
  return render({
    precopy: loadResult(root, "precopy"),
    balance: loadResult(root, "balance"),
    migration: loadResult(root, "migration"),
    labMigration: loadResult(root, "lab-migration"),
    drain: loadResult(root, "drain"),
    scale: loadResult(root, "scale"),
    floor: loadResult(root, "floor"),
    capacity: loadResult(root, "capacity"),
    soak: loadResult(root, "soak"),
  });
}

export function writeReport(root: string): void {
  const report = renderSaved(root);
  mkdirSync(join(root, "docs/benchmarks"), { recursive: true });
  for (const [file, svg] of report.charts) writeFileSync(join(root, "docs/benchmarks", file), svg);
  writeFileSync(join(root, "docs/benchmarks.md"), report.markdown);
}
