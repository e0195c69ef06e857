// The committed CRDs and docs/api.md are exactly what the schemas generate,
// and the generated schemas are structural.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { allCrds } from "../src/index.ts";
import { generatedFiles } from "../src/outputs.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));

type Node = Record<string, unknown>;
function walk(node: unknown, path: string, visit: (n: Node, path: string) => void): void {
  if (!node || typeof node !== "object" || Array.isArray(node)) return;
  const n = node as Node;
  visit(n, path);
  for (const [k, v] of Object.entries((n.properties as Node) ?? {})) walk(v, `${path}.${k}`, visit);
  if (n.items) walk(n.items, `${path}[]`, visit);
  if (n.additionalProperties && typeof n.additionalProperties === "object")
    walk(n.additionalProperties, `${path}{}`, visit);
}

describe("generated files", () => {
  for (const [rel, content] of generatedFiles()) {
    it(`${rel} is up to date (npm run gen)`, () => {
      assert.equal(
        readFileSync(root + rel, "utf8"),
        content,
        `${rel} differs from the generator's output: run npm run gen`,
      );
    });
  }

  it("are structural: typed nodes, no $ref, no additionalProperties false, described fields", () => {
    for (const crd of allCrds() as Array<{
      metadata: { name: string };
      spec: { versions: Array<{ schema: { openAPIV3Schema: Node } }> };
    }>) {
      const schema = crd.spec.versions[0]?.schema.openAPIV3Schema;
      walk(schema, crd.metadata.name, (n, path) => {
        assert.ok(!("$ref" in n), `${path} has $ref`);
        assert.notEqual(n.additionalProperties, false, `${path} has additionalProperties: false`);
        if (n["x-kubernetes-int-or-string"]) assert.deepEqual(n.anyOf, [{ type: "integer" }, { type: "string" }], path);
        else assert.ok(typeof n.type === "string", `${path} has no type`);
        const exempt = /(\.apiVersion|\.kind|\.metadata|\[\]|\{\})$/.test(path) || !path.includes(".");
        if (!exempt)
          assert.ok(typeof n.description === "string" && n.description.length > 0, `${path} has no description`);
      });
    }
  });
});
