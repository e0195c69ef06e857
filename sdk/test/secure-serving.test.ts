// The manager's metrics are served over TLS to Kubernetes identities the API
// server authenticates and authorizes for GET /metrics, and its health on a
// plain listener of its own; against a real API server and its RBAC.
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { TLSSocket } from "node:tls";
import { type AccessDecision, bearerToken, decideAccess, Manager, selfSignedCert } from "../src/index.ts";
import { quietLogger, startCluster } from "./support.ts";

type Cluster = Awaited<ReturnType<typeof startCluster>>;

function get(url: string, token?: string): Promise<{ status: number; body: string; subject: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      // The server's certificate is self-signed; what it is is checked from the socket below.
      { rejectUnauthorized: false, headers: token ? { authorization: `Bearer ${token}` } : {} },
      (res) => {
        const subject = String((res.socket as TLSSocket).getPeerCertificate().subject?.CN ?? "");
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, subject }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

const tokenOf = (c: { kubeConfig: { getCurrentUser(): { token?: string } | null } }) =>
  c.kubeConfig.getCurrentUser()?.token ?? "";

describe("decideAccess and bearerToken", () => {
  it("reads only a well-formed bearer header", () => {
    assert.equal(bearerToken("Bearer abc.def"), "abc.def");
    assert.equal(bearerToken("bearer abc"), "abc");
    assert.equal(bearerToken("Basic abc"), undefined);
    assert.equal(bearerToken("Bearer "), undefined);
    assert.equal(bearerToken("Bearer a b"), undefined);
    assert.equal(bearerToken(undefined), undefined);
  });

  it("grants only an authenticated user the API server allowed", () => {
    const user = { username: "alice" };
    const cases: Array<[Parameters<typeof decideAccess>, AccessDecision["code"]]> = [
      [[undefined], 401],
      [[{ authenticated: false, error: "expired" }], 401],
      [[{ authenticated: true }], 401],
      [[{ authenticated: true, user }], 403],
      [
        [
          { authenticated: true, user },
          { allowed: false, reason: "RBAC: no" },
        ],
        403,
      ],
      [
        [
          { authenticated: true, user },
          { allowed: true, denied: true },
        ],
        403,
      ],
      [[{ authenticated: true, user }, { allowed: true }], 200],
    ];
    for (const [args, code] of cases) assert.equal(decideAccess(...args).code, code, JSON.stringify(args));
    const denied = decideAccess({ authenticated: true, user }, { allowed: false, reason: "RBAC: no" });
    assert.deepEqual(denied, { code: 403, user: "alice", reason: "RBAC: no" });
  });
});

describe("Manager's metrics and health endpoints", () => {
  let c: Cluster;
  let mgr: Manager;
  let scraper: string;
  let stranger: string;

  before(async () => {
    c = await startCluster("sdk-serving");
    await c.cp.kubectlOk(["apply", "-f", "-"], {
      input: `
apiVersion: v1
kind: ServiceAccount
metadata: { name: scraper, namespace: sdk-serving }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: stranger, namespace: sdk-serving }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: serving, namespace: sdk-serving }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: sdk-metrics-reader }
rules: [{ nonResourceURLs: [/metrics], verbs: [get] }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: sdk-metrics-reader }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: sdk-metrics-reader }
subjects: [{ kind: ServiceAccount, name: scraper, namespace: sdk-serving }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: sdk-serving-auth-delegator }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:auth-delegator }
subjects: [{ kind: ServiceAccount, name: serving, namespace: sdk-serving }]
`,
    });
    scraper = tokenOf(await c.cp.serviceAccountKubeconfig("sdk-serving", "scraper"));
    stranger = tokenOf(await c.cp.serviceAccountKubeconfig("sdk-serving", "stranger"));
    // The manager runs as an identity with only system:auth-delegator, as the chart deploys it.
    const own = await c.cp.serviceAccountKubeconfig("sdk-serving", "serving");
    mgr = new Manager({
      kubeConfig: own.kubeConfig,
      name: "sdk-serving-test",
      handleSignals: false,
      logger: quietLogger,
      metricsPort: 0,
      metricsHost: "127.0.0.1",
      healthPort: 0,
    });
    await mgr.start();
  });

  after(async () => {
    await mgr?.stop();
    await c?.cp.stop();
  });

  it("serves metrics over TLS to an identity allowed GET /metrics", async () => {
    assert.match(mgr.metricsAddress ?? "", /^https:\/\/127\.0\.0\.1:\d+$/);
    const r = await get(`${mgr.metricsAddress}/metrics`, scraper);
    assert.equal(r.status, 200, r.body);
    assert.match(r.body, /process_cpu_seconds_total/);
    assert.equal(r.subject, "sdk-serving-test");
  });

  it("refuses a request without a token, with a token the API server rejects, and an identity without the right", async () => {
    const none = await get(`${mgr.metricsAddress}/metrics`);
    assert.equal(none.status, 401);
    assert.match(none.body, /bearer token is required/);
    const forged = await get(`${mgr.metricsAddress}/metrics`, `${scraper.slice(0, -4)}AAAA`);
    assert.equal(forged.status, 401);
    assert.doesNotMatch(forged.body, /process_cpu/);
    const denied = await get(`${mgr.metricsAddress}/metrics`, stranger);
    assert.equal(denied.status, 403);
    assert.doesNotMatch(denied.body, /process_cpu/);
  });

  it("serves no health on the metrics port and no metrics on the health port", async () => {
    assert.equal((await get(`${mgr.metricsAddress}/healthz`, scraper)).status, 404);
    assert.match(mgr.healthAddress ?? "", /^http:\/\/127\.0\.0\.1:\d+$/, "health listens on loopback by default");
    assert.equal((await fetch(`${mgr.healthAddress}/healthz`)).status, 200);
    assert.equal((await fetch(`${mgr.healthAddress}/readyz`)).status, 200);
    assert.equal((await fetch(`${mgr.healthAddress}/metrics`)).status, 404);
  });

  it("serves the certificate it is given", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sdk-serving-"));
    const given = await selfSignedCert("given-cert", ["localhost"], ["127.0.0.1"]);
    await writeFile(join(dir, "tls.crt"), given.cert);
    await writeFile(join(dir, "tls.key"), given.key);
    const m = new Manager({
      kubeConfig: c.kc,
      name: "sdk-serving-given",
      handleSignals: false,
      logger: quietLogger,
      metricsPort: 0,
      metricsHost: "127.0.0.1",
      metricsTls: { certFile: join(dir, "tls.crt"), keyFile: join(dir, "tls.key") },
    });
    await m.start();
    try {
      const r = await get(`${m.metricsAddress}/metrics`, scraper);
      assert.equal(r.status, 200);
      assert.equal(r.subject, "given-cert");
      assert.equal(m.healthAddress, undefined, "no health server unless asked for");
    } finally {
      await m.stop();
    }
  });
});
