// Which moves the balancer may make (operator/src/balancer/constraints.ts):
// targets that take domains, per-host move limits, movable domains, every
// placement filter against what a host holds after the moves before, and the
// checks when the refinement swaps one move for another.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Constraints } from "../src/balancer/constraints.ts";
import type { BalanceHost } from "../src/balancer/types.ts";
import { DEFAULT_OVERCOMMIT } from "../src/placement.ts";
import { dom, host } from "./balance-fixtures.ts";

const keys = (xs: readonly { name: string }[]) => xs.map((x) => x.name).sort();

describe("balancer constraints", () => {
  it("sends domains only to hosts that take them", () => {
    const hosts = [
      host("ok"),
      host("down", { ready: false }),
      host("cordoned", { unschedulable: true }),
      host("maint", { inMaintenance: true }),
    ];
    const c = new Constraints(hosts, [], 2, DEFAULT_OVERCOMMIT);
    assert.deepEqual(
      hosts.map((_, i) => c.accepts(i)),
      [true, false, false, false],
    );
    assert.equal(c.accepts(4), false, "no such host");
  });

  it("counts moves per host against the limit, less those about to be undone", () => {
    const c = new Constraints([host("a"), host("b")], [], 2, DEFAULT_OVERCOMMIT);
    const per = Int32Array.from([2, 1]);
    assert.equal(c.atLimit(per, 0), true);
    assert.equal(c.atLimit(per, 1), false);
    assert.equal(c.atLimit(per, 0, 1), false, "one of a's moves is being replaced");
  });

  it("moves a domain only if movable and not moved already in the plan", () => {
    const c = new Constraints([host("a")], [], 2, DEFAULT_OVERCOMMIT);
    assert.equal(c.mayMove(dom("x", "a"), new Set()), true);
    assert.equal(c.mayMove(dom("x", "a", { movable: false }), new Set()), false);
    assert.equal(c.mayMove(dom("x", "a"), new Set(["x"])), false);
  });

  it("checks placement filters against what the target holds after the moves before", () => {
    const web = { labels: { app: "web" }, antiAffinity: [{ app: "web" }] };
    const hosts = [host("a"), host("b", { memoryMiB: 8192 }), host("pv", { guestTypes: ["pv"] })];
    const domains = [dom("w1", "a", web), dom("w2", "b", web), dom("x", "a"), dom("y", "b")];
    const c = new Constraints(hosts, domains, 4, DEFAULT_OVERCOMMIT);
    assert.deepEqual(keys(c.placement([], "b")), ["w2", "y"]);
    const b = hosts[1] as BalanceHost;
    assert.equal(c.fits(dom("w1", "a", web), b, c.placement([], "b")), false, "anti-affinity with w2");
    assert.equal(c.fits(dom("x", "a"), b, c.placement([], "b")), false, "b is full");
    const afterOut = c.placement([{ key: "y", source: "b", target: "a" }], "b");
    assert.deepEqual(keys(afterOut), ["w2"]);
    assert.equal(c.fits(dom("x", "a"), b, afterOut), true, "room once y left");
    assert.deepEqual(keys(c.placement([{ key: "y", source: "b", target: "a" }], "a")), ["w1", "x", "y"]);
    assert.equal(c.fits(dom("x", "a"), hosts[2] as BalanceHost, []), false, "pvh guest on a pv-only host");
  });

  it("refuses a replacement that would leave the domain it no longer moves without room on its source", () => {
    // a (8 GiB) holds x 4 GiB and y 1 GiB; the plan moves x to b, then z (5 GiB) from c into a.
    const hosts = [host("a", { memoryMiB: 8192 }), host("b"), host("c")];
    const x = dom("x", "a", { memoryMiB: 4096 });
    const y = dom("y", "a", { memoryMiB: 1024 });
    const z = dom("z", "c", { memoryMiB: 5120 });
    const c = new Constraints(hosts, [x, y, z], 4, DEFAULT_OVERCOMMIT);
    const plan = [
      { key: "x", source: "a", target: "b" },
      { key: "z", source: "c", target: "a" },
    ];
    // Moving y instead keeps x on a, where z arrives: 4 + 5 GiB do not fit in 8.
    assert.equal(c.allowsReplacement(plan, 0, y, hosts[1] as BalanceHost), false);
    // Moving x elsewhere is fine: c is checked at its fullest, z still counted there.
    assert.equal(c.allowsReplacement(plan, 0, x, hosts[2] as BalanceHost), true);
    const smallC = new Constraints(
      [hosts[0] as BalanceHost, hosts[1] as BalanceHost, host("c", { memoryMiB: 8192 })],
      [x, y, z],
      4,
      DEFAULT_OVERCOMMIT,
    );
    assert.equal(smallC.allowsReplacement(plan, 0, x, host("c", { memoryMiB: 8192 })), false, "c with z and x: 9 GiB");
  });
});
