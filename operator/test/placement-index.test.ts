// The scheduler's placement index, pure: fed with any sequence of informer
// events, it holds exactly what rebuilding the placements from the final
// set of domains gives.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { XenDomain } from "@kubexen/crds";
import type { InformerEvent } from "@kubexen/sdk";
import fc from "fast-check";
import { PlacementIndex } from "../src/placement-index.ts";
import { placements } from "../src/views.ts";

const domain = (name: string, host: string | undefined, memory: string): XenDomain =>
  ({
    apiVersion: "kubexen.io/v1alpha1",
    kind: "XenDomain",
    metadata: { name, namespace: "ns" },
    spec: { memory, vcpus: 1, boot: { kernel: "/boot/vmlinuz" } },
    ...(host ? { status: { host } } : {}),
  }) as XenDomain;

const sorted = (xs: readonly { name: string; memoryMiB: number }[] | undefined) =>
  [...(xs ?? [])].map((x) => `${x.name}:${x.memoryMiB}`).sort();

describe("placement index", () => {
  it("follows bindings, moves and deletions", () => {
    const ix = new PlacementIndex();
    const a = domain("a", undefined, "1Gi");
    ix.apply({ type: "add", obj: a });
    assert.equal(ix.get("h1"), undefined, "an unbound domain is on no host");
    const a1 = domain("a", "h1", "1Gi");
    ix.apply({ type: "update", old: a, obj: a1 });
    assert.deepEqual(sorted(ix.get("h1")), ["a:1024"]);
    const a2 = domain("a", "h2", "2Gi");
    ix.apply({ type: "update", old: a1, obj: a2 });
    assert.deepEqual(sorted(ix.get("h1")), [], "moved off h1");
    assert.deepEqual(sorted(ix.get("h2")), ["a:2048"], "on h2 with its new size");
    assert.equal(ix.hostOfDomain("ns/a"), "h2");
    ix.apply({ type: "delete", obj: a2 });
    assert.deepEqual(sorted(ix.get("h2")), []);
    assert.equal(ix.hostOfDomain("ns/a"), undefined);
  });

  it("matches a rebuild from the final domains after any sequence of events (property)", () => {
    const hostArb = fc.option(fc.constantFrom("h1", "h2", "h3"), { nil: undefined });
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            name: fc.constantFrom("a", "b", "c", "d", "e"),
            host: hostArb,
            memory: fc.constantFrom("512Mi", "1Gi", "4Gi"),
            del: fc.boolean(),
          }),
          { maxLength: 60 },
        ),
        (steps) => {
          const ix = new PlacementIndex();
          const live = new Map<string, XenDomain>();
          for (const s of steps) {
            const old = live.get(s.name);
            let ev: InformerEvent<XenDomain>;
            if (s.del && old) {
              live.delete(s.name);
              ev = { type: "delete", obj: old };
            } else {
              const obj = domain(s.name, s.host, s.memory);
              live.set(s.name, obj);
              ev = old ? { type: "update", old, obj } : { type: "add", obj };
            }
            ix.apply(ev);
            // Reads between events must not leave a stale list behind.
            ix.get("h1");
          }
          const rebuilt = placements([...live.values()]);
          for (const h of ["h1", "h2", "h3"]) assert.deepEqual(sorted(ix.get(h)), sorted(rebuilt.get(h)), h);
        },
      ),
      { numRuns: 300 },
    );
  });
});
