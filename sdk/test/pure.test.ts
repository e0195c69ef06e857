// Pure helpers: conditions and their kstatus reading, field diffs, backoff, retries the server asks for, time formats.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Backoff,
  diff,
  kstatus,
  mappedKeys,
  markReady,
  markReconciling,
  markStalled,
  microTime,
  retryAfterMs,
  rfc3339,
  setCondition,
  touches,
} from "../src/index.ts";

const t0 = new Date("2026-01-01T00:00:00Z");
const t1 = new Date("2026-01-01T00:05:00Z");

describe("conditions", () => {
  it("changes lastTransitionTime only when the status changes", () => {
    let c = setCondition([], { type: "Ready", status: "False", reason: "Starting", message: "a" }, t0);
    c = setCondition(c, { type: "Ready", status: "False", reason: "StillStarting", message: "b" }, t1);
    assert.equal(c[0]?.lastTransitionTime, "2026-01-01T00:00:00Z");
    assert.equal(c[0]?.reason, "StillStarting");
    c = setCondition(c, { type: "Ready", status: "True", reason: "Running", message: "c" }, t1);
    assert.equal(c[0]?.lastTransitionTime, "2026-01-01T00:05:00Z");
    assert.equal(c.length, 1);
  });

  it("reads as kstatus does", () => {
    assert.equal(kstatus(2, 2, markReady([], 2, "Running", "ok")), "Current");
    assert.equal(kstatus(3, 2, markReady([], 2, "Running", "ok")), "InProgress", "stale observedGeneration");
    assert.equal(kstatus(2, 2, markReconciling([], 2, "Starting", "x")), "InProgress");
    assert.equal(kstatus(2, 2, markStalled(markReconciling([], 2, "Starting", "x"), 2, "NoHost", "y")), "Failed");
    const recovered = markReady(markStalled([], 2, "NoHost", "y"), 2, "Running", "ok");
    assert.deepEqual(
      recovered.map((c) => c.type),
      ["Ready"],
    );
    assert.equal(kstatus(1, 1, []), "Unknown");
  });
});

describe("diff", () => {
  it("reports added, changed and removed paths", () => {
    const d = diff({ spec: { a: 1, b: { c: 2 }, l: [1] } }, { spec: { a: 2, b: {}, l: [1], n: "x" } });
    assert.deepEqual(d, [
      { op: "change", path: ["spec", "a"], old: 1, new: 2 },
      { op: "remove", path: ["spec", "b", "c"], old: 2 },
      { op: "add", path: ["spec", "n"], new: "x" },
    ]);
    assert.ok(touches(d, "spec.a"));
    assert.ok(touches(d, "spec"));
    assert.ok(touches(d, "spec.b.c.d"));
    assert.ok(!touches(d, "spec.l"));
  });
});

describe("backoff", () => {
  it("grows by the factor with jitter, up to the cap, and resets", () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0.5, random: () => 1 });
    assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next()], [150, 300, 600, 1000, 1000]);
    b.reset();
    assert.equal(b.next(), 150);
    const r = new Backoff({ initialMs: 100, maxMs: 1000, random: Math.random });
    for (let i = 0; i < 50; i++) {
      const d = r.next();
      assert.ok(d >= Math.min(1000, 100 * 2 ** i) && d <= 1000, `delay ${d}`);
    }
  });
});

describe("retries the server asks for", () => {
  it("repeats a 429 whatever the verb, a 5xx only for a GET, and only with Retry-After in seconds", () => {
    assert.equal(retryAfterMs("POST", 429, "1"), 1000, "429: not processed, safe to send again");
    assert.equal(retryAfterMs("GET", 504, "2"), 2000);
    assert.equal(retryAfterMs("GET", 503, " 0 "), 0);
    assert.equal(retryAfterMs("POST", 503, "1"), undefined, "a write may have been done");
    assert.equal(retryAfterMs("PATCH", 500, "1"), undefined);
    assert.equal(retryAfterMs("GET", 429, null), undefined, "no Retry-After: the caller's own backoff");
    assert.equal(retryAfterMs("GET", 429, "Wed, 21 Oct 2026 07:28:00 GMT"), undefined, "only seconds, as client-go");
    assert.equal(retryAfterMs("GET", 409, "1"), undefined);
    assert.equal(retryAfterMs("GET", 200, "1"), undefined);
    assert.equal(retryAfterMs("GET", 429, "3600"), 60_000, "capped at a minute");
  });
});

describe("time formats", () => {
  it("writes metav1.Time in seconds and MicroTime in microseconds", () => {
    const t = Date.parse("2026-01-01T00:05:00.123Z");
    assert.equal(rfc3339(new Date(t)), "2026-01-01T00:05:00Z");
    assert.equal(microTime(t), "2026-01-01T00:05:00.123000Z");
  });
});

describe("builder maps", () => {
  const host = (name: string, on?: string) => ({ metadata: { name }, status: { host: on } });
  const byHost = (o: { status?: { host?: string } }) => (o.status?.host ? [`maint/${o.status.host}`] : undefined);
  it("maps the old and the new object of an update, each key once", () => {
    assert.deepEqual(mappedKeys({ type: "update", old: host("d", "a"), obj: host("d", "b") }, byHost), [
      "maint/b",
      "maint/a",
    ]);
    assert.deepEqual(mappedKeys({ type: "update", old: host("d", "a"), obj: host("d", "a") }, byHost), ["maint/a"]);
    assert.deepEqual(mappedKeys({ type: "add", obj: host("d", "a") }, byHost), ["maint/a"]);
    assert.deepEqual(mappedKeys({ type: "delete", obj: host("d") }, byHost), []);
    assert.deepEqual(
      mappedKeys({ type: "update", old: host("d"), obj: host("d", "c") }, (o) => byHost(o)?.[0]),
      ["maint/c"],
    );
  });
});

describe("testing fakes", () => {
  it("a MemoryStore tells its handlers as a watch would, and refuses to be mutated", async () => {
    const { MemoryStore } = await import("../src/testing.ts");
    const s = new MemoryStore<{ metadata: { name: string; namespace?: string }; spec?: { n: number } }>([
      { metadata: { name: "a", namespace: "x" }, spec: { n: 1 } },
    ]);
    const seen: string[] = [];
    s.addHandler((ev) => seen.push(`${ev.type}:${ev.obj.metadata.name}:${ev.obj.spec?.n ?? "-"}`));
    s.set({ metadata: { name: "a", namespace: "x" }, spec: { n: 2 } });
    s.set({ metadata: { name: "b" } });
    s.delete("x/a");
    assert.deepEqual(seen, ["update:a:2", "add:b:-", "delete:a:2"]);
    assert.deepEqual(s.keys(), ["b"]);
    const b = s.get("b");
    assert.throws(() => {
      (b as { spec?: { n: number } }).spec = { n: 3 };
    }, TypeError);
  });
});
