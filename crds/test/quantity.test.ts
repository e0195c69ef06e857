import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mibQuantity, quantityBytes, quantityMiB } from "../src/index.ts";

describe("quantities", () => {
  it("reads binary and decimal suffixes and bare bytes", () => {
    assert.equal(quantityBytes("512Mi"), 512 * 2 ** 20);
    assert.equal(quantityBytes("2Gi"), 2 * 2 ** 30);
    assert.equal(quantityBytes("1.5Gi"), 1.5 * 2 ** 30);
    assert.equal(quantityBytes("1G"), 1e9);
    assert.equal(quantityBytes("64k"), 64_000);
    assert.equal(quantityBytes("3Ki"), 3072);
    assert.equal(quantityBytes(1048576), 1048576);
    assert.equal(quantityBytes("1048576"), 1048576);
  });

  it("converts to whole MiB, rounding up", () => {
    assert.equal(quantityMiB("1Gi"), 1024);
    assert.equal(quantityMiB("1G"), 954);
    assert.equal(quantityMiB(1), 1);
    assert.equal(quantityMiB("0"), 0);
  });

  it("writes MiB back as the shortest exact quantity", () => {
    assert.equal(mibQuantity(2048), "2Gi");
    assert.equal(mibQuantity(1536), "1536Mi");
  });

  it("rejects what is not a quantity, naming the value", () => {
    for (const bad of ["-1Gi", "lots", "1.Gi", "Gi", "1gi", " ", "1e3"]) {
      assert.throws(
        () => quantityBytes(bad),
        new RegExp(`invalid quantity "${bad.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"`),
      );
    }
    assert.throws(() => quantityBytes(-5), /invalid quantity -5/);
    assert.throws(() => quantityBytes(Number.NaN), /invalid quantity NaN/);
  });
});
