// The work queue's guarantees, checked on random interleavings of adds,
// takes and completions (fast-check), and its delays on a manual clock.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  BucketRateLimiter,
  ItemExponentialRateLimiter,
  ManualClock,
  MaxOfRateLimiter,
  WorkQueue,
} from "../src/index.ts";

type Op =
  | { t: "add"; k: number }
  | { t: "get" }
  | { t: "done"; i: number }
  | { t: "addAfter"; k: number; ms: number }
  | { t: "tick"; ms: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant("add" as const), k: fc.integer({ min: 0, max: 5 }) }),
  fc.record({ t: fc.constant("get" as const) }),
  fc.record({ t: fc.constant("done" as const), i: fc.nat() }),
  fc.record({
    t: fc.constant("addAfter" as const),
    k: fc.integer({ min: 0, max: 5 }),
    ms: fc.integer({ min: 1, max: 50 }),
  }),
  fc.record({ t: fc.constant("tick" as const), ms: fc.integer({ min: 1, max: 60 }) }),
);

describe("work queue", () => {
  it("never hands one key to two workers, never loses an add, and dedups waiting keys (random interleavings)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 120 }), async (ops) => {
        const clock = new ManualClock();
        const q = new WorkQueue<number>({ clock });
        const held: number[] = [];
        // A key is "owed" a processing run after it is added, until a worker takes it.
        const owed = new Set<number>();
        for (const op of ops) {
          if (op.t === "add") {
            q.add(op.k);
            owed.add(op.k);
          } else if (op.t === "addAfter") {
            q.addAfter(op.k, op.ms);
          } else if (op.t === "tick") {
            clock.advance(op.ms);
          } else if (op.t === "get") {
            if (q.len() === 0) continue;
            const k = (await q.get()) as number;
            assert.ok(!held.includes(k), `key ${k} handed out while held`);
            held.push(k);
            owed.delete(k);
          } else if (held.length) {
            const k = held.splice(op.i % held.length, 1)[0] as number;
            q.done(k);
          }
          // Waiting keys are distinct.
          assert.ok(q.len() <= 6, "queue holds each key once");
        }
        // Drain: finish all held keys, fire all timers, take everything.
        for (const k of held.splice(0)) q.done(k);
        clock.advance(1000);
        const seen = new Set<number>();
        while (q.len() > 0) {
          const k = (await q.get()) as number;
          assert.ok(!seen.has(k), `key ${k} queued twice`);
          seen.add(k);
          q.done(k);
        }
        for (const k of owed) assert.ok(seen.has(k), `add of key ${k} was lost`);
      }),
      { numRuns: 300 },
    );
  });

  it("processes a key again when it was added while a worker held it", async () => {
    const q = new WorkQueue<string>();
    q.add("a");
    const k = await q.get();
    q.add("a");
    assert.equal(q.len(), 0, "not handed out while held");
    q.done(k as string);
    assert.equal(q.len(), 1);
    assert.equal(await q.get(), "a");
  });

  it("runs concurrent workers on distinct keys only, with bounded concurrency", async () => {
    const q = new WorkQueue<number>();
    let active = 0;
    let maxActive = 0;
    const activeKeys = new Set<number>();
    let processed = 0;
    const workers = Array.from({ length: 4 }, async () => {
      for (;;) {
        const k = await q.get();
        if (k === undefined) return;
        assert.ok(!activeKeys.has(k), `two workers on key ${k}`);
        activeKeys.add(k);
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setTimeout(r, Math.random() * 3));
        if (Math.random() < 0.3) q.add(k);
        active--;
        activeKeys.delete(k);
        processed++;
        q.done(k);
      }
    });
    for (let i = 0; i < 400; i++) {
      q.add(i % 10);
      if (i % 7 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    while (q.len() > 0 || q.inFlight() > 0) await new Promise((r) => setTimeout(r, 5));
    q.shutDown();
    await Promise.all(workers);
    assert.ok(maxActive <= 4 && maxActive >= 2, `max active ${maxActive}`);
    assert.ok(processed >= 10);
  });

  it("delays addAfter, keeping the earliest time for a key", () => {
    const clock = new ManualClock();
    const q = new WorkQueue<string>({ clock });
    q.addAfter("a", 100);
    q.addAfter("a", 50);
    q.addAfter("a", 200);
    clock.advance(49);
    assert.equal(q.len(), 0);
    clock.advance(1);
    assert.equal(q.len(), 1);
    clock.advance(500);
    assert.equal(q.len(), 1, "later duplicates were dropped");
  });

  it("backs off exponentially per key from 5 ms to 1000 s and forgets on success", () => {
    const rl = new ItemExponentialRateLimiter<string>(5, 1_000_000);
    const delays = Array.from({ length: 20 }, () => rl.when("k"));
    assert.deepEqual(delays.slice(0, 5), [5, 10, 20, 40, 80]);
    assert.equal(delays[19], 1_000_000);
    assert.equal(rl.when("other"), 5, "per key");
    rl.forget("k");
    assert.equal(rl.when("k"), 5);
  });

  it("limits the overall rate with a token bucket (10/s, burst 100)", () => {
    const clock = new ManualClock();
    const rl = new MaxOfRateLimiter<number>(
      new ItemExponentialRateLimiter<number>(5, 1_000_000),
      new BucketRateLimiter<number>(10, 100, clock),
    );
    const delays = Array.from({ length: 120 }, (_, i) => rl.when(i));
    assert.ok(
      delays.slice(0, 100).every((d) => d === 5),
      "burst passes at the per-item delay",
    );
    assert.equal(Math.round(delays[100] as number), 100);
    assert.equal(Math.round(delays[119] as number), 2000);
    clock.advance(10_000);
    assert.equal(rl.when(1000), 5, "bucket refilled");
  });

  it("stops handing out keys on shutdown and drains in-flight work", async () => {
    const q = new WorkQueue<string>();
    q.add("a");
    const a = (await q.get()) as string;
    const pending = q.get();
    const drained = q.shutDownWithDrain();
    let isDrained = false;
    void drained.then(() => {
      isDrained = true;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(isDrained, false, "waits for the held key");
    q.done(a);
    await drained;
    assert.equal(await q.get(), undefined);
    assert.equal(await pending, undefined, "a waiting worker is released");
    q.add("c");
    assert.equal(q.len(), 0, "no adds after shutdown");
  });
});
