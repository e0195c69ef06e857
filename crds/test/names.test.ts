// Names derived from others: a host's agent Lease, and back.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { hostLeaseName, hostOfLease } from "../src/index.ts";

describe("host Lease names", () => {
  it("maps a host to its agent's Lease and back; other Leases belong to no host", () => {
    for (const host of ["xen-01", "a", "xenhost-nested"]) assert.equal(hostOfLease(hostLeaseName(host)), host);
    assert.equal(hostLeaseName("xen-01"), "xenhost-xen-01");
    assert.equal(hostOfLease("kubexen-operator"), undefined);
    assert.equal(hostOfLease("xen-01"), undefined);
  });
});
