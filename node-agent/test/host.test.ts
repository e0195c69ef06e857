// The host report: what counts as a change worth writing (kubelet-style
// status updates), on reports built from a sim host's real answers.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { XenHostStatus } from "@kubexen/crds";
import { SimHypervisor } from "@kubexen/hypervisor";
import { hostStatus, nextReportMs, reportChanged } from "../src/index.ts";

const sim = new SimHypervisor({ hostname: "xen-r", memoryMiB: 8192, cpus: 4 });

async function report(at: Date, previous?: Parameters<typeof hostStatus>[0]["previous"]) {
  return hostStatus(
    {
      info: await sim.hostInfo(),
      domains: await sim.listDomains(),
      bound: [],
      migrating: new Set(),
      driver: "sim",
      agentVersion: "test",
      fencing: { enabled: true, windowSeconds: 40 },
      previous,
    },
    at,
  );
}

describe("host report changes", () => {
  it("a later report of the same host is no change; a first report always is", async () => {
    const a = await report(new Date(1_000_000));
    const b = await report(new Date(1_010_000), { conditions: a.status.conditions as never[] });
    assert.notEqual(a.status.lastHeartbeatTime, b.status.lastHeartbeatTime);
    assert.equal(reportChanged(a.status, b.status), false);
    assert.equal(reportChanged(undefined, b.status), true);
  });

  it("CPU load counts once it moved by a step", () => {
    const base = { cpuLoad: 0.3, domainCount: 2 } as XenHostStatus;
    assert.equal(reportChanged(base, { ...base, cpuLoad: 0.32 }), false);
    assert.equal(reportChanged(base, { ...base, cpuLoad: 0.36 }), true);
    assert.equal(reportChanged(base, { ...base, cpuLoad: 0.24 }), true);
    assert.equal(reportChanged({ domainCount: 2 } as XenHostStatus, base), true);
  });

  it("host health's Fenced condition is not the agent's; its Ready=False is, and makes the agent write", async () => {
    const a = await report(new Date(1_000_000));
    const conds = a.status.conditions ?? [];
    const fenced = { type: "Fenced", status: "False", reason: "Renewing", message: "", lastTransitionTime: "x" };
    const withFenced = { ...a.status, conditions: [...conds, fenced] } as XenHostStatus;
    assert.equal(reportChanged(withFenced, a.status), false);
    const lost = conds.map((c) =>
      c.type === "Ready" ? { ...c, status: "False" as const, reason: "HeartbeatLost" } : c,
    );
    assert.equal(reportChanged({ ...a.status, conditions: lost } as XenHostStatus, a.status), true);
  });

  it("a domain started on the host is a change", async () => {
    const a = await report(new Date(1_000_000));
    await sim.create({
      name: "r.one",
      uuid: "8f2d6c1e-5b7a-4c3d-9e0f-1a2b3c4d5e6f",
      spec: { type: "pvh", memory: "512Mi", vcpus: 1, boot: { kernel: "/boot/vmlinuz" } } as never,
      macs: [],
    });
    const b = await report(new Date(1_010_000), { conditions: a.status.conditions as never[] });
    assert.equal(reportChanged(a.status, b.status), true);
    await sim.destroy("8f2d6c1e-5b7a-4c3d-9e0f-1a2b3c4d5e6f");
  });
});

describe("host report interval", () => {
  it("is the configured interval with no migration here, three times it while one runs", () => {
    assert.equal(nextReportMs(10_000, 0), 10_000);
    assert.equal(nextReportMs(10_000, 1), 30_000);
    assert.equal(nextReportMs(10_000, 4), 30_000);
    assert.equal(nextReportMs(2_000, 0), 2_000);
  });
});
