// Proves the test bed: a real kube-apiserver and etcd, CRDs through the built
// kubectl, watches through client-node, ServiceAccount tokens and RBAC, the
// admin by certificate and by token, and a clean stop.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api, Watch } from "@kubernetes/client-node";
import { ControlPlane, pidAlive } from "../src/index.ts";

const crd = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: widgets.harness.kubexen.io }
spec:
  group: harness.kubexen.io
  scope: Namespaced
  names: { plural: widgets, singular: widget, kind: Widget }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: { type: integer, minimum: 1 }
`;

describe("control plane harness", () => {
  let cp: ControlPlane;
  before(async () => {
    cp = await ControlPlane.start();
  });
  after(async () => {
    await cp?.stop();
  });

  it("serves /readyz and /version of the built release", async () => {
    assert.equal((await cp.rawGet("/readyz")).status, 200);
    const version = JSON.parse((await cp.rawGet("/version")).body) as { major: string; minor: string };
    assert.equal(version.major, "1");
    assert.match((version as { gitVersion?: string }).gitVersion ?? "", /^v1\.\d+\.\d+$/);
    assert.ok(Number.parseInt(version.minor, 10) >= 32, `minor ${version.minor} >= 32`);
  });

  it("applies a CRD with kubectl, which becomes Established and enforces its schema", async () => {
    await cp.kubectlOk(["apply", "-f", "-"], { input: crd });
    await cp.kubectlOk(["wait", "--for=condition=Established", "--timeout=30s", "crd/widgets.harness.kubexen.io"]);
    const bad = await cp.kubectl(["create", "-f", "-"], {
      input:
        "apiVersion: harness.kubexen.io/v1\nkind: Widget\nmetadata: {name: w0, namespace: default}\nspec: {size: 0}\n",
    });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /spec\.size/);
  });

  it("creates and watches an object with client-node", async () => {
    const kc = cp.kubeConfig();
    const seen: string[] = [];
    let resolveSeen!: () => void;
    const gotIt = new Promise<void>((r) => {
      resolveSeen = r;
    });
    const ctrl = await new Watch(kc).watch(
      "/apis/harness.kubexen.io/v1/namespaces/default/widgets",
      {},
      (phase, obj: { metadata: { name: string } }) => {
        seen.push(`${phase}:${obj.metadata.name}`);
        if (obj.metadata.name === "w1") resolveSeen();
      },
      () => {},
    );
    await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: "harness.kubexen.io",
      version: "v1",
      namespace: "default",
      plural: "widgets",
      body: { apiVersion: "harness.kubexen.io/v1", kind: "Widget", metadata: { name: "w1" }, spec: { size: 3 } },
    });
    await Promise.race([
      gotIt,
      new Promise((_, rej) => setTimeout(() => rej(new Error(`no watch event; saw ${seen}`)), 10_000)),
    ]);
    ctrl.abort();
    assert.deepEqual(seen, ["ADDED:w1"]);
  });

  it("authenticates a ServiceAccount: denied without RBAC, allowed with it", async () => {
    const kc = cp.kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: "rbac-test" } } });
    await core.createNamespacedServiceAccount({ namespace: "rbac-test", body: { metadata: { name: "reader" } } });
    const sa = await cp.serviceAccountKubeconfig("rbac-test", "reader");
    const asSa = sa.kubeConfig.makeApiClient(CoreV1Api);

    await assert.rejects(
      asSa.listNamespacedConfigMap({ namespace: "rbac-test" }),
      (err: { code?: number }) => err.code === 403,
    );
    const who = await cp.kubectlOk(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"], {
      kubeconfig: sa.path,
    });
    assert.equal(who, "system:serviceaccount:rbac-test:reader");

    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: "rbac-test",
      body: {
        metadata: { name: "cm-reader" },
        rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["list"] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: "rbac-test",
      body: {
        metadata: { name: "cm-reader" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "cm-reader" },
        subjects: [{ kind: "ServiceAccount", name: "reader", namespace: "rbac-test" }],
      },
    });
    // RBAC is served from an informer cache: allow a moment for the binding to arrive.
    let allowed = false;
    for (let i = 0; i < 50 && !allowed; i++) {
      allowed = await asSa.listNamespacedConfigMap({ namespace: "rbac-test" }).then(
        () => true,
        () => false,
      );
      if (!allowed) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(allowed, "list configmaps allowed after the RoleBinding");
    // Only what was granted: secrets stay forbidden.
    await assert.rejects(
      asSa.listNamespacedSecret({ namespace: "rbac-test" }),
      (err: { code?: number }) => err.code === 403,
    );
  });

  it("authenticates the admin by bearer token as well as by client certificate", async () => {
    const who = await cp.kubectlOk(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"], {
      kubeconfig: cp.tokenKubeconfigPath,
    });
    assert.equal(who, "kubexen-admin-token");
    const viaToken = cp.kubeConfig({ token: true }).makeApiClient(CoreV1Api);
    assert.ok((await viaToken.listNamespace()).items.length > 0);
    const wrong = cp.kubeConfig({ token: true });
    const user = wrong.getCurrentUser();
    if (user) Object.assign(user, { token: "not-the-token" });
    await assert.rejects(wrong.makeApiClient(CoreV1Api).listNamespace(), (err: { code?: number }) => err.code === 401);
  });

  it("stops and leaves no process or directory behind", async () => {
    const pids = cp.pids();
    assert.equal(pids.length, 2);
    await cp.stop();
    for (const pid of pids) assert.equal(pidAlive(pid), false, `pid ${pid} still alive`);
    assert.equal(existsSync(cp.dir), false);
  });
});

describe("control plane harness when its test process dies", () => {
  it("leaves no etcd or kube-apiserver behind after SIGKILL of the test process", async () => {
    const child = spawn(process.execPath, [new URL("fixtures/start-and-hang.ts", import.meta.url).pathname], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const line = await new Promise<string>((resolve, reject) => {
      let buf = "";
      child.stdout.on("data", (c: Buffer) => {
        buf += c.toString();
        if (buf.includes("\n")) resolve(buf.split("\n")[0] ?? "");
      });
      child.on("exit", (code) => reject(new Error(`fixture exited early with ${code}`)));
    });
    const { pids, dir } = JSON.parse(line) as { pids: number[]; dir: string };
    assert.equal(pids.length, 2);
    for (const pid of pids) assert.ok(pidAlive(pid), `pid ${pid} runs before the kill`);
    child.kill("SIGKILL");
    const deadline = Date.now() + 10_000;
    while (pids.some(pidAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    for (const pid of pids) assert.equal(pidAlive(pid), false, `pid ${pid} outlived its test process`);
    rmSync(dir, { recursive: true, force: true });
  });
});
