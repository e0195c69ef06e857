// npm run images: builds the operator and node-agent images, tagged with the project's version,
// and writes an SBOM for each under dist/images/.
//   node scripts/images.ts [--registry=HOST[/PATH]] [--bases=auto|local|upstream] [--push] [operator|node-agent...]
import { parseArgs } from "node:util";
import { engineCli } from "../e2e/src/containers.ts";
import { buildImages, type Component, components } from "../e2e/src/images.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    registry: { type: "string", default: "localhost" },
    bases: { type: "string", default: "auto" },
    push: { type: "boolean", default: false },
  },
});
const bases = values.bases;
if (bases !== "auto" && bases !== "local" && bases !== "upstream") {
  console.error(`--bases must be auto, local or upstream, not ${bases}`);
  process.exit(2);
}
const only = positionals.length > 0 ? (positionals as Component[]) : components;
for (const c of only)
  if (!components.includes(c)) {
    console.error(`unknown image ${c}: one of ${components.join(", ")}`);
    process.exit(2);
  }
const engine = engineCli();
const t0 = Date.now();
const images = await buildImages({ engine, registry: values.registry, bases, only });
for (const i of images) {
  if (values.push) {
    console.error(`images: pushing ${i.ref}`);
    await engine.run(["push", i.ref], { onLine: (l) => console.error(`  ${l}`) });
  }
  console.log(`${i.ref}  ${i.id.slice(0, 19)}  ${i.built ? "built" : "up to date"}  SBOM ${i.sbom}`);
}
console.error(`images: done in ${((Date.now() - t0) / 1000).toFixed(0)} s (${engine.cli})`);
