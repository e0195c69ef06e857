// The signer kubexen.io/migration on a real API server: a host's agent asks
// through the CertificateSigningRequest API; the API server records who
// asked; the operator issues a certificate for that host only and denies a
// request for another host's name, or from anyone but an agent.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { type ControlPlane, makeCa, startKubexenControlPlane, until } from "@kubexen/e2e";
import { createLogger, KubeClient, makeCsr } from "@kubexen/sdk";
import { type Csr, certificateSigningRequests, MIGRATION_SIGNER, Operator } from "../src/index.ts";

const log = createLogger("csr-signer-test", process.env.LOG_LEVEL ?? "warn");
const NS = "kubexen-system";

describe("operator: the migration certificate signer", () => {
  let cp: ControlPlane;
  let op: Operator;
  let caCert: string;
  const agent = new Map<string, KubeClient>();

  before(async () => {
    cp = await startKubexenControlPlane();
    const ca = await makeCa(cp.dir, "migration-ca");
    caCert = await readFile(ca.certFile, "utf8");
    await cp.kubectlOk(["apply", "-f", "-"], {
      input: `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: csr-requester }
rules: [{ apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests], verbs: [create, get] }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: csr-requester }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: csr-requester }
subjects:
  - { kind: ServiceAccount, name: kubexen-host-xen-01, namespace: ${NS} }
  - { kind: ServiceAccount, name: intruder, namespace: ${NS} }
`,
    });
    for (const sa of ["kubexen-host-xen-01", "intruder"]) {
      await cp.kubectlOk(["create", "serviceaccount", "-n", NS, sa]);
      agent.set(sa, new KubeClient((await cp.serviceAccountKubeconfig(NS, sa)).kubeConfig));
    }
    op = new Operator({
      kubeConfig: cp.kubeConfig(),
      namespace: NS,
      leaderElection: false,
      logger: log,
      migrationCa: { cert: caCert, key: await readFile(ca.keyFile, "utf8") },
    });
    await op.start();
  });
  after(async () => {
    await op?.stop();
    await cp?.stop();
  });

  async function ask(sa: string, name: string, cn: string): Promise<{ key: string; get: () => Promise<Csr> }> {
    const { csr, key } = await makeCsr(cn, [cn], ["10.0.0.1"]);
    const client = agent.get(sa) as KubeClient;
    await client.create<Csr>(certificateSigningRequests, {
      apiVersion: "certificates.k8s.io/v1",
      kind: "CertificateSigningRequest",
      metadata: { name },
      spec: {
        request: Buffer.from(csr).toString("base64"),
        signerName: MIGRATION_SIGNER,
        usages: ["digital signature", "server auth", "client auth"],
        expirationSeconds: 86_400,
        // Whatever a requester writes here, the API server records who it is.
        username: "system:serviceaccount:kubexen-system:kubexen-host-xen-02",
      },
    });
    return { key, get: () => client.get<Csr>(certificateSigningRequests, name) };
  }

  it("issues a host's own certificate, signed by the migration CA, for the time asked", async () => {
    const r = await ask("kubexen-host-xen-01", "xen-01-own", "xen-01");
    await until("issued", async () => !!(await r.get()).status?.certificate, 30_000);
    const csr = await r.get();
    assert.equal(csr.spec.username, `system:serviceaccount:${NS}:kubexen-host-xen-01`);
    assert.ok(csr.status?.conditions?.some((c) => c.type === "Approved" && c.reason === "AgentOwnHost"));
    const cert = new X509Certificate(Buffer.from(csr.status?.certificate ?? "", "base64"));
    assert.equal(cert.subject, "CN=xen-01");
    assert.equal(cert.subjectAltName, "DNS:xen-01, IP Address:10.0.0.1");
    assert.ok(cert.verify(new X509Certificate(caCert).publicKey), "signed by the migration CA");
    assert.ok(cert.checkPrivateKey((await import("node:crypto")).createPrivateKey(r.key)));
    const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
    assert.ok(days > 0.9 && days < 1.1, `valid for the day asked, not ${days}`);
  });

  it("denies a host's request for another host's name, and anyone's who is not an agent", async () => {
    const other = await ask("kubexen-host-xen-01", "xen-01-asks-for-xen-02", "xen-02");
    const intruder = await ask("intruder", "intruder-asks", "intruder");
    for (const r of [other, intruder]) {
      await until("denied", async () => !!(await r.get()).status?.conditions?.some((c) => c.type === "Denied"), 30_000);
      assert.equal((await r.get()).status?.certificate, undefined);
    }
    const reason = (await other.get()).status?.conditions?.find((c) => c.type === "Denied")?.message ?? "";
    assert.match(reason, /CN must be the requester's host xen-01, not xen-02/);
    const why = (await intruder.get()).status?.conditions?.find((c) => c.type === "Denied")?.message ?? "";
    assert.match(why, /intruder is not a kubexen agent identity/);
  });
});
