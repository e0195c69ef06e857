// A host's agent gets its migration certificate through the
// CertificateSigningRequest API, signed by the operator: its key stays on
// the host, the certificate names the host, a restart reuses it, and one
// that is not the CA's is replaced. Real API server, real operator signer.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type ControlPlane, makeCa, startKubexenControlPlane } from "@kubexen/e2e";
import { HostCertificate } from "@kubexen/node-agent";
import { Operator } from "@kubexen/operator";
import { createLogger, KubeClient, type KubeObject, selfSignedCert } from "@kubexen/sdk";

const log = createLogger("migration-certs-test", process.env.LOG_LEVEL ?? "warn");
const NS = "kubexen-system";

describe("agents' migration certificates from the CSR API", () => {
  let cp: ControlPlane;
  let op: Operator;
  let ca: string;
  let hostClient: KubeClient;
  let admin: KubeClient;
  const csrCount = async () =>
    (
      await admin.list<KubeObject>({
        group: "certificates.k8s.io",
        version: "v1",
        plural: "certificatesigningrequests",
        kind: "CertificateSigningRequest",
        namespaced: false,
      })
    ).items.length;

  before(async () => {
    cp = await startKubexenControlPlane();
    admin = new KubeClient(cp.kubeConfig());
    const pair = await makeCa(cp.dir, "migration-ca");
    ca = await readFile(pair.certFile, "utf8");
    await cp.kubectlOk(["create", "serviceaccount", "-n", NS, "kubexen-host-xen-01"]);
    await cp.kubectlOk(["apply", "-f", "-"], {
      input: `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: host-csr }
rules: [{ apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests], verbs: [create, get] }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: host-csr }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: host-csr }
subjects: [{ kind: ServiceAccount, name: kubexen-host-xen-01, namespace: ${NS} }]
`,
    });
    hostClient = new KubeClient((await cp.serviceAccountKubeconfig(NS, "kubexen-host-xen-01")).kubeConfig);
    op = new Operator({
      kubeConfig: cp.kubeConfig(),
      namespace: NS,
      leaderElection: false,
      logger: log,
      migrationCa: { cert: ca, key: await readFile(pair.keyFile, "utf8") },
    });
    await op.start();
  });
  after(async () => {
    await op?.stop();
    await cp?.stop();
  });

  it("asks once, keeps its key on the host, reuses the certificate after a restart, replaces a foreign one", async () => {
    const dir = join(await mkdtemp(join(cp.dir, "host-")), "migration");
    const make = () => new HostCertificate({ client: hostClient, host: "xen-01", dir, ca, ips: ["10.0.0.1"], log });
    const first = make();
    const kc = await first.start();
    first.stop();
    const cert = new X509Certificate(kc.cert);
    assert.equal(cert.subject, "CN=xen-01");
    assert.ok(cert.verify(new X509Certificate(ca).publicKey));
    assert.equal((await stat(join(dir, "tls.key"))).mode & 0o777, 0o600);
    assert.equal(await readFile(join(dir, "tls.crt"), "utf8"), kc.cert);
    assert.equal(await csrCount(), 1);

    const restarted = make();
    assert.equal((await restarted.start()).cert, kc.cert, "a good certificate is reused");
    restarted.stop();
    assert.equal(await csrCount(), 1, "no second request");

    // A certificate the migration CA did not sign (a host's attempt to name itself) is replaced.
    const foreign = await selfSignedCert("xen-01", ["xen-01"], []);
    await writeFile(join(dir, "tls.crt"), foreign.cert);
    await writeFile(join(dir, "tls.key"), foreign.key);
    const again = make();
    const renewed = await again.start();
    again.stop();
    assert.notEqual(renewed.cert, foreign.cert);
    assert.ok(new X509Certificate(renewed.cert).verify(new X509Certificate(ca).publicKey));
    assert.equal(await csrCount(), 2);
  });

  it("fails with the signer's reason when it is refused", async () => {
    const dir = join(await mkdtemp(join(cp.dir, "host-")), "migration");
    const impostor = new HostCertificate({ client: hostClient, host: "xen-02", dir, ca, log, timeoutMs: 30_000 });
    await assert.rejects(impostor.start(), /denied: the subject CN must be the requester's host xen-01, not xen-02/);
  });
});
