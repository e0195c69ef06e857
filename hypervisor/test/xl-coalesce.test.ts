import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { coalesced } from "../src/xl/coalesce.ts";

/** A reader whose runs the test ends by hand, recording how many ran at once. */
function reader() {
  const runs: Array<{ resolve: (v: number) => void; reject: (e: Error) => void }> = [];
  let active = 0;
  let maxActive = 0;
  const fn = () =>
    new Promise<number>((resolve, reject) => {
      active++;
      maxActive = Math.max(maxActive, active);
      // Either way the run ends: no longer active.
      const ended =
        <A>(f: (a: A) => void) =>
        (a: A) => {
          active--;
          f(a);
        };
      runs.push({ resolve: ended(resolve), reject: ended(reject) });
    });
  return { fn, runs, maxActive: () => maxActive };
}
const flush = () => new Promise((r) => setImmediate(r));

describe("coalesced xl reads", () => {
  it("runs alone when nothing is in flight", async () => {
    const r = reader();
    const read = coalesced(r.fn);
    const a = read();
    assert.equal(r.runs.length, 1);
    r.runs[0]?.resolve(1);
    assert.equal(await a, 1);
    const b = read();
    assert.equal(r.runs.length, 2, "a caller after the run ended starts a new one");
    r.runs[1]?.resolve(2);
    assert.equal(await b, 2);
  });

  it("never runs twice at once; callers arriving meanwhile share one next run, started after the first ends", async () => {
    const r = reader();
    const read = coalesced(r.fn);
    const first = read();
    const laters = [read(), read(), read()];
    assert.equal(r.runs.length, 1, "nothing starts while a run is in flight");
    r.runs[0]?.resolve(10);
    assert.equal(await first, 10);
    await flush();
    assert.equal(r.runs.length, 2, "one run for all who waited");
    const late = read();
    assert.equal(r.runs.length, 2);
    r.runs[1]?.resolve(20);
    assert.deepEqual(await Promise.all(laters), [20, 20, 20], "the waiters see the run begun after they asked");
    await flush();
    assert.equal(r.runs.length, 3, "a caller during the second run gets a third");
    r.runs[2]?.resolve(30);
    assert.equal(await late, 30);
    assert.equal(r.maxActive(), 1);
  });

  it("a failed run fails its own callers only; the queued run still starts", async () => {
    const r = reader();
    const read = coalesced(r.fn);
    const first = read();
    const second = read();
    r.runs[0]?.reject(new Error("xl list timed out"));
    await assert.rejects(first, /timed out/);
    await flush();
    assert.equal(r.runs.length, 2);
    r.runs[1]?.resolve(5);
    assert.equal(await second, 5);
    const third = read();
    assert.equal(r.runs.length, 3, "nothing is left in flight after the queue drained");
    r.runs[2]?.resolve(6);
    assert.equal(await third, 6);
  });
});
