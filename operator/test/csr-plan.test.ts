// Which migration certificates the operator issues: only an agent identity's
// request for its own host name, with no other name, a strong key and the
// usages a migration stream needs.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { agentHostOf, type CsrFacts, MAX_CERT_SECONDS, MIGRATION_SIGNER, reviewCsr } from "../src/index.ts";

const NS = "kubexen-system";
const SA = `system:serviceaccount:${NS}:`;
const good = (over: Partial<CsrFacts> = {}, req: Partial<NonNullable<CsrFacts["request"]>> = {}): CsrFacts => ({
  signerName: MIGRATION_SIGNER,
  username: `${SA}kubexen-host-xen-01`,
  usages: ["digital signature", "server auth", "client auth"],
  approved: false,
  denied: false,
  failed: false,
  issued: false,
  ...over,
  request: {
    signatureValid: true,
    subject: { cn: "xen-01", others: [] },
    dnsNames: ["xen-01"],
    ips: ["10.0.0.1"],
    otherSans: 0,
    key: { kind: "EC", curve: "P-256" },
    ...req,
  },
});

describe("agentHostOf", () => {
  it("reads a standalone host's ServiceAccount and the DaemonSet's node-bound token, in the agents' namespace only", () => {
    assert.equal(agentHostOf(`${SA}kubexen-host-xen-01`, undefined, NS), "xen-01");
    assert.equal(
      agentHostOf(`${SA}kubexen-agent`, { "authentication.kubernetes.io/node-name": ["node-7"] }, NS),
      "node-7",
    );
    assert.equal(agentHostOf(`${SA}kubexen-agent`, undefined, NS), undefined, "a token not bound to a node");
    assert.equal(agentHostOf(`${SA}kubexen-agent`, { "authentication.kubernetes.io/node-name": [""] }, NS), undefined);
    assert.equal(agentHostOf(`${SA}kubexen-host-`, undefined, NS), undefined);
    assert.equal(agentHostOf("system:serviceaccount:tenant:kubexen-host-xen-01", undefined, NS), undefined);
    assert.equal(agentHostOf("system:serviceaccount:tenant:kubexen-agent", undefined, NS), undefined);
    assert.equal(agentHostOf("kubexen-host-xen-01", undefined, NS), undefined);
    assert.equal(agentHostOf("admin", undefined, NS), undefined);
  });
});

describe("reviewCsr", () => {
  it("approves an agent's request for its own host, then signs it for a bounded time", () => {
    assert.deepEqual(reviewCsr(good(), NS), { action: "approve", host: "xen-01" });
    assert.deepEqual(reviewCsr(good({ approved: true }), NS), {
      action: "sign",
      host: "xen-01",
      validitySeconds: 7 * 86_400,
    });
    const long = reviewCsr(good({ approved: true, expirationSeconds: 10 * 365 * 86_400 }), NS);
    assert.equal(long.action === "sign" && long.validitySeconds, MAX_CERT_SECONDS);
    const short = reviewCsr(good({ approved: true, expirationSeconds: 1 }), NS);
    assert.equal(short.action === "sign" && short.validitySeconds, 600);
  });

  it("leaves other signers' requests and settled ones alone", () => {
    assert.equal(reviewCsr(good({ signerName: "kubernetes.io/kube-apiserver-client" }), NS).action, "none");
    for (const k of ["denied", "failed", "issued"] as const)
      assert.equal(reviewCsr(good({ [k]: true }), NS).action, "none");
  });

  it("denies whatever is not an agent's own, with the reason", () => {
    const cases: Array<[string, CsrFacts, RegExp]> = [
      [
        "another host's name",
        good({}, { subject: { cn: "xen-02", others: [] } }),
        /CN must be the requester's host xen-01, not xen-02/,
      ],
      ["no CN", good({}, { subject: { others: [] } }), /not empty/],
      [
        "an O besides the CN",
        good({}, { subject: { cn: "xen-01", others: ["O=system:masters"] } }),
        /only CN, not O=system:masters/,
      ],
      ["a second CN", good({}, { subject: { cn: "xen-01", others: ["CN=xen-02"] } }), /CN=xen-02/],
      [
        "another host in the SANs",
        good({}, { dnsNames: ["xen-01", "xen-02"] }),
        /other than xen-01 are not allowed: xen-02/,
      ],
      ["a URI SAN", good({}, { otherSans: 1 }), /only DNS and IP/],
      ["a bad signature", good({}, { signatureValid: false }), /signature does not verify/],
      ["a short RSA key", good({}, { key: { kind: "RSA", bits: 1024 } }), /1024 bits is too short/],
      ["an odd curve", good({}, { key: { kind: "EC", curve: "secp256k1" } }), /curve secp256k1/],
      ["Ed25519", good({}, { key: { kind: "other", name: "ed25519" } }), /ed25519 is not allowed/],
      [
        "a tenant's identity",
        good({ username: "system:serviceaccount:apps:kubexen-host-xen-01" }),
        /is not a kubexen agent identity/,
      ],
      ["a user", good({ username: "alice" }), /alice is not a kubexen agent identity/],
      [
        "code signing",
        good({ usages: ["server auth", "client auth", "code signing"] }),
        /usages not allowed: code signing/,
      ],
      ["no client auth", good({ usages: ["digital signature", "server auth"] }), /must include client auth/],
    ];
    for (const [what, f, msg] of cases) {
      const d = reviewCsr(f, NS);
      assert.equal(d.action, "deny", what);
      assert.match(d.action === "deny" ? d.reason : "", msg, what);
      // An approval by someone else changes nothing: the operator does not sign what it would deny.
      assert.equal(reviewCsr({ ...f, approved: true }, NS).action, "deny", `${what}, approved`);
    }
    const unparsed = reviewCsr({ ...good(), request: undefined }, NS);
    assert.match(unparsed.action === "deny" ? unparsed.reason : "", /not a PEM certificate request/);
  });

  it("accepts RSA 2048 and P-384 keys, and IP names", () => {
    assert.equal(reviewCsr(good({}, { key: { kind: "RSA", bits: 2048 } }), NS).action, "approve");
    assert.equal(reviewCsr(good({}, { key: { kind: "EC", curve: "P-384" } }), NS).action, "approve");
    assert.equal(reviewCsr(good({}, { ips: ["10.0.0.1", "fd00::1"], dnsNames: [] }), NS).action, "approve");
  });
});
