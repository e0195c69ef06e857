// A used migration token stays refused across an agent restart, until it expires.
import assert from "node:assert/strict";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { pruneUsed, UsedTokens } from "../src/used-tokens.ts";

describe("UsedTokens", () => {
  it("prunes expired entries only", () => {
    assert.deepEqual(pruneUsed({ a: 10, b: 20, c: 30 }, 20), { c: 30 });
    assert.deepEqual(pruneUsed({ a: "x" as unknown as number }, 0), {});
  });

  it("refuses a second use, also in a new process reading the same file", async () => {
    const file = join(await mkdtemp(join(tmpdir(), "used-")), "state", "used-tokens.json");
    let now = 1_000;
    const first = new UsedTokens(file, () => now);
    await first.load();
    assert.equal(await first.use("m1", 5_000), true);
    assert.equal(await first.use("m1", 5_000), false);
    assert.equal(first.has("m1"), true);

    const restarted = new UsedTokens(file, () => now);
    await restarted.load();
    assert.equal(restarted.has("m1"), true, "remembered across a restart");
    assert.equal(await restarted.use("m1", 5_000), false);
    assert.equal(await restarted.use("m2", 6_000), true);

    now = 5_500;
    const later = new UsedTokens(file, () => now);
    await later.load();
    assert.equal(later.has("m1"), false, "forgotten once expired");
    assert.equal(later.has("m2"), true);
    assert.equal((await readFile(file, "utf8")).includes("m2"), true);
  });

  it("keeps every use when several land at once", async () => {
    const file = join(await mkdtemp(join(tmpdir(), "used-")), "used-tokens.json");
    const u = new UsedTokens(file, () => 0);
    await Promise.all(Array.from({ length: 20 }, (_, i) => u.use(`m${i}`, 1_000)));
    const again = new UsedTokens(file, () => 0);
    await again.load();
    for (let i = 0; i < 20; i++) assert.equal(again.has(`m${i}`), true, `m${i}`);
  });

  it("fails to load a corrupt record rather than forget what was used", async () => {
    const file = join(await mkdtemp(join(tmpdir(), "used-")), "used-tokens.json");
    await writeFile(file, "{not json");
    await assert.rejects(new UsedTokens(file).load());
  });
});
