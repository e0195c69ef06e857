// Controllers on the SDK's in-memory fakes: a store seeded with objects, one
// reconcile, the writes it made. No API server; the cache is frozen, so a
// reconcile that mutated it would throw.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DOMAIN_FINALIZER, type XenDomain, type XenHost, type XenMigrationPolicy } from "@kubexen/crds";
import { createLogger } from "@kubexen/sdk";
import { MemoryStore, RecordingWriter } from "@kubexen/sdk/testing";
import { Lifecycle } from "../src/lifecycle.ts";
import { POLICY_MANAGER, PolicyStatus, policySummary } from "../src/policy-status.ts";

const log = createLogger("controllers-unit", "silent");
const spec: XenMigrationPolicy["spec"] = {
  parallelMigrationsPerCluster: 5,
  parallelOutboundMigrationsPerHost: 2,
  parallelInboundMigrationsPerHost: 2,
  completionTimeoutPerGiB: 150,
  progressTimeoutSeconds: 150,
  bandwidthMiBps: 0,
  autoConverge: false,
} as XenMigrationPolicy["spec"];
const policy = (generation: number, status?: XenMigrationPolicy["status"]): XenMigrationPolicy => ({
  apiVersion: "kubexen.io/v1alpha1",
  kind: "XenMigrationPolicy",
  metadata: { name: "default", generation },
  spec,
  status,
});

describe("PolicyStatus on fakes", () => {
  it("reports a new generation in force once, under its own manager, and then writes nothing", async () => {
    const policies = new MemoryStore([policy(3)]);
    const client = new RecordingWriter();
    const ps = new PolicyStatus({ client, policies, log });
    await ps.reconcile("default");
    assert.equal(client.writes.length, 1);
    const w = client.writes[0];
    assert.ok(w);
    assert.equal(w.verb, "apply");
    assert.equal(w?.subresource, "status");
    assert.equal(w?.fieldManager, POLICY_MANAGER);
    const status = (w.body as XenMigrationPolicy).status;
    assert.equal(status?.observedGeneration, 3);
    assert.deepEqual(
      status?.conditions?.map((c) => [c.type, c.status, c.reason, c.message, c.observedGeneration]),
      [["Ready", "True", "InForce", policySummary(spec), 3]],
    );
    // What it wrote, seen back through the cache: nothing more to do.
    policies.set(policy(3, status));
    await ps.reconcile("default");
    assert.equal(client.writes.length, 1);
    // A missing policy is nothing to report.
    await ps.reconcile("other");
    assert.equal(client.writes.length, 1);
  });
});

describe("Lifecycle on fakes", () => {
  const host = (name: string, fenced = false): XenHost =>
    ({
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenHost",
      metadata: { name },
      status: fenced
        ? {
            conditions: [
              {
                type: "Fenced",
                status: "True",
                reason: "Fenced",
                message: "",
                lastTransitionTime: "2026-01-01T00:00:00Z",
              },
            ],
          }
        : {},
    }) as XenHost;
  const deleted = (name: string, status: XenDomain["status"]): XenDomain =>
    ({
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenDomain",
      metadata: {
        name,
        namespace: "apps",
        uid: `uid-${name}`,
        deletionTimestamp: "2026-01-01T00:00:00Z",
        finalizers: ["other.example/keep", DOMAIN_FINALIZER],
      },
      spec: { memory: "128Mi" },
      status,
    }) as XenDomain;

  it("releases the finalizer only when the domain runs nowhere, with a guarded patch", async () => {
    const domains = new MemoryStore([
      deleted("running", { host: "h1", state: "running" }),
      deleted("stopped", { host: "h1", state: "absent" }),
      deleted("unbound", {}),
      deleted("on-fenced", { host: "h2", state: "running" }),
      deleted("host-gone", { host: "h9", state: "running" }),
    ]);
    const hosts = new MemoryStore([host("h1"), host("h2", true)]);
    const client = new RecordingWriter();
    const lc = new Lifecycle({ client, domains, hosts, log });
    assert.deepEqual(await lc.reconcile("apps/running"), { requeueAfterMs: 5_000 }, "waits for its agent");
    for (const k of ["stopped", "unbound", "on-fenced", "host-gone"])
      assert.equal(await lc.reconcile(`apps/${k}`), undefined);
    assert.deepEqual(
      client.writes.map((w) => [w.verb, w.name, w.body]),
      ["stopped", "unbound", "on-fenced", "host-gone"].map((n) => [
        "jsonPatch",
        n,
        [
          { op: "test", path: "/metadata/uid", value: `uid-${n}` },
          { op: "test", path: "/metadata/finalizers/1", value: DOMAIN_FINALIZER },
          { op: "remove", path: "/metadata/finalizers/1" },
        ],
      ]),
    );
  });

  it("leaves a domain that is not being deleted, or holds no finalizer of ours", async () => {
    const live = { ...deleted("live", { host: "h1", state: "absent" }) };
    live.metadata = { ...live.metadata, deletionTimestamp: undefined };
    const foreign = deleted("foreign", {});
    foreign.metadata = { ...foreign.metadata, finalizers: ["other.example/keep"] };
    const client = new RecordingWriter();
    const lc = new Lifecycle({ client, domains: new MemoryStore([live, foreign]), hosts: new MemoryStore([]), log });
    await lc.reconcile("apps/live");
    await lc.reconcile("apps/foreign");
    assert.deepEqual(client.writes, []);
  });
});
