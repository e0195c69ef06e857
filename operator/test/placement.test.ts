// Placement: every filter with its reason, the kube-scheduler-style message,
// scoring, and no overbooking when many domains are placed one after another
// (property-tested against the hosts' capacity).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  assume,
  type DomainRequest,
  type HostView,
  type Placements,
  place,
  unfit,
  unschedulableMessage,
} from "../src/placement.ts";

const host = (name: string, o: Partial<HostView> = {}): HostView => ({
  name,
  ready: true,
  unschedulable: false,
  inMaintenance: false,
  labels: {},
  cpus: 8,
  memoryMiB: 16384,
  guestTypes: ["pv", "pvh", "hvm"],
  pciAssignable: [],
  ...o,
});
const req = (o: Partial<DomainRequest> = {}): DomainRequest => ({
  namespace: "ns",
  name: "d",
  labels: {},
  memoryMiB: 1024,
  vcpus: 2,
  pciDevices: [],
  type: "pvh",
  hostSelector: {},
  antiAffinity: [],
  ...o,
});

describe("placement filters", () => {
  it("names why a host cannot take a domain", () => {
    assert.equal(unfit(req(), host("h", { ready: false }), []), "not ready");
    assert.equal(unfit(req(), host("h", { unschedulable: true }), []), "cordoned");
    assert.equal(unfit(req(), host("h", { inMaintenance: true }), []), "in maintenance");
    assert.equal(unfit(req({ type: "hvm" }), host("h", { guestTypes: ["pv"] }), []), "cannot run hvm guests");
    assert.equal(
      unfit(req({ hostSelector: { tier: "web" } }), host("h", { labels: { tier: "db" } }), []),
      "didn't match the host selector",
    );
    assert.equal(unfit(req({ pciDevices: ["0000:03:00.0"] }), host("h"), []), "no PCI device 0000:03:00.0");
    const gpu = host("h", { pciAssignable: ["0000:03:00.0"] });
    assert.equal(
      unfit(req({ pciDevices: ["0000:03:00.0"] }), gpu, [{ ...req(), pciDevices: ["0000:03:00.0"] }]),
      "PCI device 0000:03:00.0 in use",
    );
    assert.equal(
      unfit(req({ antiAffinity: [{ app: "web" }] }), host("h"), [{ ...req({ name: "w1" }), labels: { app: "web" } }]),
      "anti-affinity",
    );
    assert.equal(
      unfit(req({ antiAffinity: [{ app: "web" }] }), host("h"), [
        { ...req({ name: "w1", namespace: "other" }), labels: { app: "web" } },
      ]),
      undefined,
      "anti-affinity is per namespace",
    );
    assert.equal(unfit(req({ memoryMiB: 16000 }), host("h"), [req({ memoryMiB: 1000 })]), "insufficient memory");
    assert.equal(unfit(req({ vcpus: 30 }), host("h"), [req({ vcpus: 4 })]), "insufficient cpu");
    assert.equal(unfit(req(), host("h"), []), undefined);
  });

  it("explains an unschedulable domain with counts per cause", () => {
    const hosts = [
      host("a", { unschedulable: true }),
      host("b", { memoryMiB: 512 }),
      host("c", { memoryMiB: 512 }),
      host("d", { ready: false }),
      host("e", { unschedulable: true }),
    ];
    const d = place(req(), hosts, new Map());
    assert.equal(d.host, undefined);
    assert.equal("message" in d && d.message, "0/5 hosts available: 2 cordoned, 2 insufficient memory, 1 not ready");
    assert.equal(unschedulableMessage(0, {}), "0/0 hosts available");
  });
});

describe("placement scores", () => {
  it("spreads: prefers the emptier host, then the name", () => {
    const placements: Placements = new Map([["a", [req({ memoryMiB: 8192, vcpus: 8 })]]]);
    assert.equal(place(req(), [host("a"), host("b")], placements).host, "b");
    assert.equal(place(req(), [host("b"), host("a")], new Map()).host, "a", "ties break by name");
  });

  it("never overbooks a host however many domains are placed in a row (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ mem: fc.integer({ min: 512, max: 32768 }), cpus: fc.integer({ min: 1, max: 32 }) }), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.array(fc.record({ mem: fc.integer({ min: 16, max: 8192 }), vcpus: fc.integer({ min: 1, max: 16 }) }), {
          maxLength: 200,
        }),
        (hs, ds) => {
          const hosts = hs.map((h, i) => host(`h${i}`, { memoryMiB: h.mem, cpus: h.cpus }));
          const placements: Placements = new Map();
          for (const [i, d] of ds.entries()) {
            const r = req({ name: `d${i}`, memoryMiB: d.mem, vcpus: d.vcpus });
            const dec = place(r, hosts, placements);
            if (dec.host) assume(placements, dec.host, r);
            else {
              // Unschedulable only if no host had room.
              for (const h of hosts) assert.ok(unfit(r, h, placements.get(h.name) ?? []) !== undefined);
            }
          }
          for (const h of hosts) {
            const placed = placements.get(h.name) ?? [];
            assert.ok(placed.reduce((s, d) => s + d.memoryMiB, 0) <= h.memoryMiB, `${h.name} memory overbooked`);
            assert.ok(placed.reduce((s, d) => s + d.vcpus, 0) <= h.cpus * 4, `${h.name} cpu overbooked`);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
