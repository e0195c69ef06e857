// The zod schemas (the TypeScript types every package uses) accept every
// example, with the same defaults the API server applies.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import type { z } from "zod";
import {
  XenBalancerSchema,
  XenDomainSchema,
  XenMaintenanceSchema,
  XenMigrationPolicySchema,
  XenMigrationSchema,
} from "../src/index.ts";

const dir = fileURLToPath(new URL("../../examples/", import.meta.url));
const byKind: Record<string, z.ZodType> = {
  XenDomain: XenDomainSchema,
  XenMigration: XenMigrationSchema,
  XenMaintenance: XenMaintenanceSchema,
  XenBalancer: XenBalancerSchema,
  XenMigrationPolicy: XenMigrationPolicySchema,
};

describe("examples against the zod schemas", () => {
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")) {
    it(`${f} parses`, () => {
      const obj = parse(readFileSync(dir + f, "utf8")) as { kind: string };
      const schema = byKind[obj.kind];
      assert.ok(schema, `no schema for kind ${obj.kind}`);
      const r = schema.safeParse(obj);
      assert.ok(r.success, r.success ? "" : r.error.message);
    });
  }

  it("applies the defaults the CRD declares", () => {
    const d = XenDomainSchema.parse({
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenDomain",
      metadata: { name: "x" },
      spec: { memory: "1Gi", boot: { kernel: "/k" }, disks: [{ vdev: "xvda", source: "/d" }] },
    });
    assert.equal(d.spec.type, "pvh");
    assert.equal(d.spec.vcpus, 1);
    assert.equal(d.spec.runStrategy, "Always");
    assert.equal(d.spec.evictionStrategy, "LiveMigrateIfPossible");
    assert.deepEqual(d.spec.disks?.[0], { vdev: "xvda", source: "/d", format: "raw", access: "rw", devtype: "disk" });
    const b = XenBalancerSchema.parse({
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenBalancer",
      metadata: { name: "default" },
    });
    assert.deepEqual(b.spec.weights, { cpu: 0.5, memory: 0.5 });
    assert.equal(b.spec.mode, "Recommend");
  });

  it("rejects a malformed object with the path of the field", () => {
    const r = XenDomainSchema.safeParse({
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenDomain",
      metadata: {},
      spec: { memory: "lots", networks: [{ bridge: "xenbr0", mac: "01:00:00:00:00:00" }] },
    });
    assert.equal(r.success, false);
    const paths = r.error?.issues.map((i) => i.path.join(".")).sort();
    assert.deepEqual(paths, ["spec.memory", "spec.networks.0.mac"]);
  });
});
