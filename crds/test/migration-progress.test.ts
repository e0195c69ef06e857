// onlyProgressChanged: which XenMigration updates say nothing but progress.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MIGRATION_PROGRESS_FIELDS, onlyProgressChanged, type XenMigration } from "../src/index.ts";

const base: XenMigration = {
  apiVersion: "kubexen.io/v1alpha1",
  kind: "XenMigration",
  metadata: { name: "m", namespace: "ns", resourceVersion: "1", generation: 1 },
  spec: { domain: "web-1", targetHost: "xen-b", reason: "User" },
  status: { phase: "Transferring", sourceHost: "xen-a", targetHost: "xen-b", bytesTransferred: 10, rounds: 0 },
} as XenMigration;
const next = (f: (m: XenMigration) => void): XenMigration => {
  const m = structuredClone(base);
  f(m);
  return m;
};

describe("a migration's progress-only updates", () => {
  it("are progress fields and the metadata every write changes, alone", () => {
    assert.equal(onlyProgressChanged(base, base), true);
    for (const f of MIGRATION_PROGRESS_FIELDS)
      assert.equal(
        onlyProgressChanged(
          base,
          next((m) => {
            (m.status as Record<string, unknown>)[f] = f === "progressTime" ? "2026-12-07T00:00:00Z" : 99;
            m.metadata.resourceVersion = "2";
          }),
        ),
        true,
        f,
      );
  });

  it("are not when anything else changes", () => {
    const changes: Array<(m: XenMigration) => void> = [
      (m) => {
        if (m.status) m.status.phase = "Succeeded";
      },
      (m) => {
        if (m.status) m.status.downtimeMs = 5;
      },
      (m) => {
        if (m.status)
          m.status.conditions = [
            {
              type: "SourceDone",
              status: "True",
              reason: "Sent",
              message: "",
              lastTransitionTime: "2026-12-07T00:00:00Z",
            },
          ];
      },
      (m) => {
        m.metadata.deletionTimestamp = "2026-12-07T00:00:00Z";
      },
      (m) => {
        m.metadata.finalizers = ["x"];
      },
    ];
    for (const [i, f] of changes.entries()) assert.equal(onlyProgressChanged(base, next(f)), false, `change ${i}`);
  });
});
