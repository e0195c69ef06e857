// The scheduler's pure core: where an unbound domain goes, what it is told
// when nothing fits (and when that is worth an event), the status a binding
// writes, and the assumed bindings that keep two decisions in a row from
// overbooking a host.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { stableMac } from "@kubexen/crds";
import type { Condition } from "@kubexen/sdk";
import fc from "fast-check";
import {
  DEFAULT_OVERCOMMIT,
  type DomainRequest,
  type HostView,
  type PlacedDomain,
  type Placements,
  unfit,
} from "../src/placement.ts";
import {
  assumedPlacements,
  bindingStatus,
  decideSchedule,
  type ScheduleFacts,
  UNSCHEDULABLE_RETRY_MS,
  withAssumed,
} from "../src/scheduler-plan.ts";

const NOW = new Date("2030-01-01T00:00:00Z");
const host = (name: string, o: Partial<HostView> = {}): HostView => ({
  name,
  ready: true,
  unschedulable: false,
  inMaintenance: false,
  labels: {},
  cpus: 4,
  memoryMiB: 4096,
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
const placedDomain = (name: string, memoryMiB: number): PlacedDomain => ({
  namespace: "ns",
  name,
  labels: {},
  memoryMiB,
  vcpus: 1,
  pciDevices: [],
});
const facts = (o: Partial<ScheduleFacts> = {}): ScheduleFacts => ({
  request: req(),
  hosts: [host("a"), host("b")],
  placements: new Map(),
  policy: DEFAULT_OVERCOMMIT,
  conditions: [],
  generation: 2,
  ...o,
});
const ready: Condition = { type: "Ready", status: "True", reason: "Running", message: "", lastTransitionTime: "t0" };

describe("scheduling decision", () => {
  it("binds to the best host that fits", () => {
    const placements: Placements = new Map([["a", [placedDomain("x", 2048)]]]);
    assert.deepEqual(decideSchedule(facts({ placements }), NOW), { kind: "bind", host: "b" });
    assert.deepEqual(decideSchedule(facts(), NOW), { kind: "bind", host: "a" }, "ties break by name");
  });

  it("tells an unschedulable domain why, counted per cause, keeping only its own condition", () => {
    const d = decideSchedule(
      facts({
        hosts: [host("a", { ready: false }), host("b", { memoryMiB: 512 }), host("c", { memoryMiB: 512 })],
        conditions: [ready],
      }),
      NOW,
    );
    assert.deepEqual(d, {
      kind: "unschedulable",
      message: "0/3 hosts available: 2 insufficient memory, 1 not ready",
      status: {
        phase: "Unschedulable",
        unschedulableReasons: { "not ready": 1, "insufficient memory": 2 },
        conditions: [
          {
            type: "Scheduled",
            status: "False",
            reason: "Unschedulable",
            message: "0/3 hosts available: 2 insufficient memory, 1 not ready",
            observedGeneration: 2,
            lastTransitionTime: "2030-01-01T00:00:00Z",
          },
        ],
      },
      recordEvent: true,
      requeueAfterMs: UNSCHEDULABLE_RETRY_MS,
    });
  });

  it("records an event only when the reason changed, and keeps the transition time while it stays False", () => {
    const hosts = [host("a", { unschedulable: true })];
    const first = decideSchedule(facts({ hosts }), NOW);
    assert.ok(first.kind === "unschedulable");
    const again = decideSchedule(
      facts({ hosts, lastMessage: first.message, conditions: first.status.conditions }),
      new Date("2030-01-01T00:05:00Z"),
    );
    assert.ok(again.kind === "unschedulable");
    assert.equal(again.recordEvent, false);
    assert.equal(again.status.conditions[0]?.lastTransitionTime, "2030-01-01T00:00:00Z");
    const changed = decideSchedule(facts({ hosts: [host("a", { ready: false })], lastMessage: first.message }), NOW);
    assert.ok(changed.kind === "unschedulable" && changed.recordEvent);
    const none = decideSchedule(facts({ hosts: [] }), NOW);
    assert.ok(none.kind === "unschedulable");
    assert.equal(none.message, "0/0 hosts available");
  });

  it("binds exactly when some host fits, and only to one that does (property)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            ready: fc.boolean(),
            unschedulable: fc.boolean(),
            inMaintenance: fc.boolean(),
            memoryMiB: fc.constantFrom(512, 1024, 4096),
            used: fc.constantFrom(0, 512, 2048),
            zone: fc.constantFrom("x", "y"),
          }),
          { maxLength: 6 },
        ),
        fc.constantFrom(256, 1024, 3000),
        fc.option(fc.constantFrom("x", "y"), { nil: undefined }),
        (hs, memoryMiB, zone) => {
          const hosts = hs.map((h, i) =>
            host(`h${i}`, {
              ready: h.ready,
              unschedulable: h.unschedulable,
              inMaintenance: h.inMaintenance,
              memoryMiB: h.memoryMiB,
              labels: { zone: h.zone },
            }),
          );
          const placements: Placements = new Map(
            hs.map((h, i) => [`h${i}`, h.used ? [placedDomain(`p${i}`, h.used)] : []]),
          );
          const request = req({ memoryMiB, hostSelector: zone ? { zone } : {} });
          const d = decideSchedule(facts({ request, hosts, placements }), NOW);
          const fitting = hosts.filter((h) => !unfit(request, h, placements.get(h.name) ?? []));
          if (d.kind === "bind") assert.ok(fitting.some((h) => h.name === d.host));
          else {
            assert.equal(fitting.length, 0);
            const counted = Object.values(d.status.unschedulableReasons).reduce((s, n) => s + n, 0);
            assert.equal(counted, hosts.length, "every host's reason is counted");
            assert.equal(d.status.conditions.length, 1);
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe("binding status", () => {
  const UUID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
  it("writes the host, the identity, a MAC per interface and Scheduled=True, and nothing else of the status", () => {
    const s = bindingStatus(
      {
        host: "xen-1",
        uuid: UUID,
        networks: [{ bridge: "xenbr0" }, { bridge: "xenbr1", mac: "00:16:3e:00:00:01" }],
        conditions: [ready],
        generation: 4,
      },
      NOW,
    );
    assert.deepEqual(s, {
      host: "xen-1",
      uuid: UUID,
      interfaces: [
        { index: 0, mac: stableMac(UUID, 0), bridge: "xenbr0" },
        { index: 1, mac: "00:16:3e:00:00:01", bridge: "xenbr1" },
      ],
      conditions: [
        {
          type: "Scheduled",
          status: "True",
          reason: "Bound",
          message: "bound to xen-1",
          observedGeneration: 4,
          lastTransitionTime: "2030-01-01T00:00:00Z",
        },
      ],
    });
    assert.deepEqual(bindingStatus({ host: "h", uuid: UUID, networks: undefined, conditions: [] }, NOW).interfaces, []);
  });

  it("gives the same MACs whenever the same domain is bound again (property)", () => {
    fc.assert(
      fc.property(fc.uuid(), fc.integer({ min: 0, max: 8 }), (uuid, n) => {
        const networks = Array.from({ length: n }, () => ({ bridge: "xenbr0" }));
        const a = bindingStatus({ host: "a", uuid, networks, conditions: [] }, NOW);
        const b = bindingStatus({ host: "b", uuid, networks, conditions: [] }, NOW);
        assert.deepEqual(a.interfaces, b.interfaces);
        assert.equal(new Set(a.interfaces.map((i) => i.mac)).size, a.interfaces.length);
      }),
    );
  });
});

describe("assumed bindings", () => {
  it("counts those not seen yet and forgets those seen bound or gone", () => {
    const r = assumedPlacements([
      { key: "ns/a", host: "h1", domain: { bound: false, placed: placedDomain("a", 512) } },
      { key: "ns/b", host: "h1", domain: { bound: true, placed: placedDomain("b", 512) } },
      { key: "ns/c", host: "h2" },
      { key: "ns/d", host: "h1", domain: { bound: false, placed: placedDomain("d", 256) } },
    ]);
    assert.deepEqual(r.forget, ["ns/b", "ns/c"]);
    assert.deepEqual(
      r.placements.get("h1")?.map((p) => p.name),
      ["a", "d"],
    );
    assert.equal(r.placements.get("h2"), undefined);
    const seen = withAssumed(new Map([["h1", [placedDomain("x", 1)]]]), r.placements);
    assert.deepEqual(
      seen.get("h1")?.map((p) => p.name),
      ["x", "a", "d"],
    );
    assert.equal(seen.get("h3"), undefined);
  });

  it("never overbooks a host when domains are decided one after another, each assumed (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(256, 512, 1024, 2048), { minLength: 1, maxLength: 20 }),
        fc.array(fc.constantFrom(1024, 2048, 4096), { minLength: 1, maxLength: 4 }),
        (sizes, caps) => {
          const hosts = caps.map((memoryMiB, i) => host(`h${i}`, { memoryMiB, cpus: 64 }));
          const assumed: Array<{ key: string; host: string; placed: PlacedDomain }> = [];
          for (const [i, memoryMiB] of sizes.entries()) {
            const { placements } = assumedPlacements(
              assumed.map((a) => ({ key: a.key, host: a.host, domain: { bound: false, placed: a.placed } })),
            );
            const d = decideSchedule(
              facts({
                request: req({ name: `d${i}`, memoryMiB, vcpus: 1 }),
                hosts,
                placements: withAssumed(new Map(), placements),
              }),
              NOW,
            );
            if (d.kind === "bind")
              assumed.push({ key: `ns/d${i}`, host: d.host, placed: { ...placedDomain(`d${i}`, memoryMiB) } });
          }
          for (const h of hosts) {
            const used = assumed.filter((a) => a.host === h.name).reduce((s, a) => s + a.placed.memoryMiB, 0);
            assert.ok(used <= h.memoryMiB, `${h.name}: ${used} > ${h.memoryMiB}`);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
