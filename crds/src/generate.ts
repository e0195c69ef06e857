// Writes crds/generated/*.yaml, the Helm chart's CRDs and Argo CD health checks, and
// docs/api.md from the zod schemas.
//   node crds/src/generate.ts          write the files
//   node crds/src/generate.ts --check  exit 1 and name the files that differ
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { generatedFiles } from "./outputs.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const check = process.argv.includes("--check");
const stale: string[] = [];
for (const [rel, content] of generatedFiles()) {
  const path = root + rel;
  let current: string | undefined;
  try {
    current = readFileSync(path, "utf8");
  } catch {
    current = undefined;
  }
  if (current === content) continue;
  if (check) stale.push(rel);
  else {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
    console.log(`wrote ${rel}`);
  }
}
if (stale.length) {
  console.error(`generated files differ from the schemas: ${stale.join(", ")}\nrun: npm run gen`);
  process.exit(1);
}
