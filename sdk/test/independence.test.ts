// The SDK is a general operator SDK: it names nothing of the project that uses
// it and depends on none of its packages, so that it can be published alone.
import assert from "node:assert/strict";
import { globSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

const sdk = join(import.meta.dirname, "..");

describe("the SDK stands alone", () => {
  it("names no project of its users in its source", () => {
    const files = globSync("src/**/*.ts", { cwd: sdk });
    assert.ok(files.length > 10, `found the sources (${files.length})`);
    const hits = files.flatMap((f) =>
      readFileSync(join(sdk, f), "utf8")
        .split("\n")
        .flatMap((line, i) => (/kubexen/i.test(line) ? [`${f}:${i + 1}: ${line.trim()}`] : [])),
    );
    assert.deepEqual(hits, []);
  });

  it("depends on no package of the project at run time", () => {
    const pkg = JSON.parse(readFileSync(join(sdk, "package.json"), "utf8")) as {
      dependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
    };
    const ours = Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies }).filter((d) => d.startsWith("@kubexen/"));
    assert.deepEqual(ours, []);
  });
});
