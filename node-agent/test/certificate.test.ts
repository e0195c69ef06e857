// When the agent asks for a new migration certificate: none held, another
// host's, not from the migration CA, not for its key, expired, or two thirds
// through its life.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { certificateDecision, renewAtMs } from "../src/certificate.ts";

const day = 86_400_000;
const held = { subjectCN: "xen-01", notBeforeMs: 0, notAfterMs: 3 * day, issuedByCa: true, matchesKey: true };

describe("certificateDecision", () => {
  it("uses a good certificate until two thirds of its life", () => {
    assert.equal(renewAtMs(held), 2 * day);
    assert.deepEqual(certificateDecision(held, "xen-01", day), { use: true, renewAtMs: 2 * day });
    const due = certificateDecision(held, "xen-01", 2 * day);
    assert.equal(due.use, false);
  });

  it("asks anew for anything it cannot trust", () => {
    const cases: Array<[string, Parameters<typeof certificateDecision>[0], RegExp]> = [
      ["none", undefined, /no certificate/],
      ["another host's", { ...held, subjectCN: "xen-02" }, /names xen-02, not xen-01/],
      ["another CA's", { ...held, issuedByCa: false }, /not from the migration CA/],
      ["another key's", { ...held, matchesKey: false }, /not for the key held/],
      ["expired", { ...held, notAfterMs: day / 2 }, /expired/],
    ];
    for (const [what, h, why] of cases) {
      const d = certificateDecision(h, "xen-01", day);
      assert.equal(d.use, false, what);
      assert.match(d.use ? "" : d.why, why, what);
    }
  });
});
