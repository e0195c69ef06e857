// The Helm chart against a real control plane with the built helm: lint,
// schema, install, upgrade, rollback and uninstall; every rendered object
// accepted by the API server; the operator and two agents run with the
// chart's identities (the agents' minted per host) and complete a create,
// migrate and delete cycle; the admission policy and RBAC deny what they
// must; the Argo CD health checks and the Dockerfiles are checked too.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { resources, type XenDomain, type XenMigration, type XenMigrationPolicy } from "@kubexen/crds";
import { mintHost } from "@kubexen/node-agent";
import { Operator } from "@kubexen/operator";
import { createLogger, KubeClient, SdkMetrics } from "@kubexen/sdk";
import { parse, parseAllDocuments } from "yaml";
import { admissionReady } from "../src/cluster.ts";
import { ControlPlane } from "../src/controlplane/controlplane.ts";
import { type SimFleet, startSimFleet } from "../src/fleet.ts";
import { until } from "../src/wait.ts";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../", import.meta.url));
const chart = join(root, "charts/kubexen");
const NS = "kubexen-system";
const log = createLogger("chart-test", process.env.LOG_LEVEL ?? "warn");

describe("Helm chart", () => {
  let cp: ControlPlane;
  const helm = async (args: string[]) => cp.helm(args);
  const helmOk = async (args: string[]) => {
    const r = await helm(args);
    assert.equal(r.code, 0, `helm ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    cp = await ControlPlane.start();
  });
  after(async () => {
    await cp?.stop();
  });

  it("passes helm lint, and the schema rejects wrong values naming them", async () => {
    await helmOk(["lint", chart, "--strict"]);
    const bad: Array<[string[], RegExp]> = [
      [["--set", "operator.replicas=0"], /operator\/replicas|replicas.*minimum|minimum.*1/],
      [["--set", "agent.fencing=maybe"], /agent\/fencing|fencing/],
      [["--set", "operater.replicas=2"], /operater/],
      [["--set", "agent.migrationPort=70000"], /migrationPort/],
      [["--set", "metrics.serviceMonitor.interval=soon"], /interval/],
      [["--set", "operator.maxHeapMiB=16"], /maxHeapMiB/],
      [["--set", "operator.semiSpaceMiB=0"], /semiSpaceMiB/],
    ];
    for (const [args, re] of bad) {
      const r = await helm(["template", "x", chart, ...args]);
      assert.notEqual(r.code, 0, `${args.join(" ")} was accepted`);
      assert.match(r.stderr, re, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /values don't meet the specifications of the schema|schema/);
    }
  });

  it("ships exactly the generated CRDs", () => {
    for (const f of readdirSync(join(root, "crds/generated")).filter((x) => x.endsWith(".yaml")))
      assert.equal(
        readFileSync(join(chart, "crds", f), "utf8"),
        readFileSync(join(root, "crds/generated", f), "utf8"),
        `${f}: run npm run gen`,
      );
  });

  it("installs, and every rendered object is accepted by the API server", async () => {
    await helmOk(["install", "kubexen", chart, "-n", NS, "--create-namespace"]);
    const crds = await cp.kubectlOk(["get", "crd", "-o", "name"]);
    for (const k of [
      "xendomains",
      "xenhosts",
      "xenmigrations",
      "xenmaintenances",
      "xenbalancers",
      "xenmigrationpolicies",
    ])
      assert.match(crds, new RegExp(`${k}\\.kubexen\\.io`));
    for (const o of [
      "deploy/kubexen-operator",
      "ds/kubexen-agent",
      "secret/kubexen-migration",
      "svc/kubexen-operator-metrics",
      "pdb/kubexen-operator",
    ])
      await cp.kubectlOk(["get", "-n", NS, o]);
    await cp.kubectlOk(["get", "validatingadmissionpolicy", "kubexen-agent-own-host"]);
    // The API server has MutatingAdmissionPolicy v1: the chart installs the domain finalizer policy.
    await cp.kubectlOk(["get", "mutatingadmissionpolicy", "kubexen-domain-finalizer"]);
    const rendered = await helmOk([
      "template",
      "kubexen",
      chart,
      "-n",
      NS,
      "--set",
      "metrics.grafanaDashboard.enabled=true",
    ]);
    const kinds = parseAllDocuments(rendered)
      .map((d) => d.toJS() as { kind?: string } | null)
      .filter((d): d is { kind: string } => !!d?.kind)
      .map((d) => d.kind);
    assert.ok(
      kinds.includes("ConfigMap") && kinds.includes("DaemonSet") && kinds.includes("ValidatingAdmissionPolicy"),
    );
    const dry = await cp.kubectl(["apply", "--dry-run=server", "-n", NS, "-f", "-"], { input: rendered });
    assert.equal(dry.code, 0, dry.stderr);
    // The operator runs restricted: the namespace can enforce it.
    const dep = JSON.parse(await cp.kubectlOk(["get", "-n", NS, "deploy/kubexen-operator", "-o", "json"]));
    const c = dep.spec.template.spec.containers[0];
    assert.equal(dep.spec.replicas, 2);
    assert.equal(dep.spec.template.spec.securityContext.runAsNonRoot, true);
    assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"]);
    assert.ok(c.livenessProbe && c.readinessProbe && c.resources.limits);
    // Its heap limit is the chart's, stated beside the memory limit.
    const { maxHeapMiB, semiSpaceMiB } = parse(readFileSync(join(chart, "values.yaml"), "utf8")).operator;
    assert.ok(
      c.env.some(
        (e: { name: string; value?: string }) =>
          e.name === "NODE_OPTIONS" &&
          e.value === `--max-old-space-size=${maxHeapMiB} --max-semi-space-size=${semiSpaceMiB}`,
      ),
      JSON.stringify(c.env),
    );
  });

  it("upgrades keeping the migration CA, rolls back, and uninstalls keeping CRDs and the CA", async () => {
    const ca = () => cp.kubectlOk(["get", "-n", NS, "secret/kubexen-migration", "-o", "jsonpath={.data.ca\\.crt}"]);
    const before = await ca();
    assert.ok(before.length > 100);
    await helmOk(["upgrade", "kubexen", chart, "-n", NS, "--set", "operator.replicas=3"]);
    const replicas = () =>
      cp.kubectlOk(["get", "-n", NS, "deploy/kubexen-operator", "-o", "jsonpath={.spec.replicas}"]);
    assert.equal(await replicas(), "3");
    assert.equal(await ca(), before, "the CA survives an upgrade");
    await helmOk(["rollback", "kubexen", "1", "-n", NS]);
    assert.equal(await replicas(), "2");
    assert.equal(await ca(), before);
    await helmOk(["uninstall", "kubexen", "-n", NS]);
    const gone = await cp.kubectl(["get", "-n", NS, "deploy/kubexen-operator"]);
    assert.notEqual(gone.code, 0);
    assert.equal(await ca(), before, "the CA is kept (resource-policy keep)");
    await cp.kubectlOk(["get", "crd", "xendomains.kubexen.io"]);
    await helmOk(["install", "kubexen", chart, "-n", NS]);
    assert.equal(await ca(), before, "a reinstall reuses it");
  });

  describe("with the chart's identities", () => {
    let fleet: SimFleet;
    let op: Operator;
    let opClient: KubeClient;
    const agentKc = new Map<string, KubeConfig>();
    const admin = () => new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });

    before(async () => {
      await cp.kubectlOk(["create", "namespace", "apps"]);
      await admissionReady(cp, "apps");
      for (const h of ["h1", "h2"]) {
        const kc = new KubeConfig();
        kc.loadFromString(await mintHost(cp.kubeConfig(), { host: h, namespace: NS, expirationSeconds: 3600 }));
        agentKc.set(h, kc);
      }
      const opKc = (await cp.serviceAccountKubeconfig(NS, "kubexen-operator")).kubeConfig;
      opClient = new KubeClient(opKc, { metrics: new SdkMetrics() });
      // The CA the chart generated, as the operator's Deployment mounts it from the Secret.
      const secret = async (key: string) =>
        Buffer.from(
          await cp.kubectlOk([
            "get",
            "-n",
            NS,
            "secret/kubexen-migration",
            "-o",
            `jsonpath={.data.${key.replace(".", "\\.")}}`,
          ]),
          "base64",
        ).toString("utf8");
      const migrationCa = { cert: await secret("ca.crt"), key: await secret("ca.key") };
      const caDir = mkdtempSync(join(cp.dir, "chart-ca-"));
      const ca = { certFile: join(caDir, "ca.crt"), keyFile: join(caDir, "ca.key") };
      writeFileSync(ca.certFile, migrationCa.cert);
      writeFileSync(ca.keyFile, migrationCa.key);
      op = new Operator({ kubeConfig: opKc, namespace: NS, logger: log, migrationCa });
      await op.start();
      // Agents hold no certificate ahead: each asks for its own through the CSR API, as the DaemonSet's do.
      fleet = await startSimFleet(
        cp,
        ["h1", "h2"].map((name) => ({ name, memoryMiB: 8192 })),
        {
          logger: log,
          reportIntervalMs: 500,
          kubeConfigFor: (h) => agentKc.get(h) as KubeConfig,
          ca,
          requestCertificates: true,
        },
      );
    });
    after(async () => {
      await op?.stop();
      await fleet?.stop();
    });

    it("gives each agent a certificate for its own host through the CSR API, and hosts the CA's certificate only", async () => {
      const c = admin();
      await until("both hosts can take migrations", async () => {
        const hs = await c.list<import("@kubexen/crds").XenHost>(resources.xenHosts);
        return ["h1", "h2"].every((h) => hs.items.find((x) => x.metadata.name === h)?.status?.migrationEndpoint);
      });
      const csrs = await c.list<{
        metadata: { name?: string };
        spec: { username: string; signerName: string };
        status?: { certificate?: string; conditions?: Array<{ type: string }> };
      }>({
        group: "certificates.k8s.io",
        version: "v1",
        plural: "certificatesigningrequests",
        kind: "CertificateSigningRequest",
        namespaced: false,
      });
      for (const h of ["h1", "h2"]) {
        const mine = csrs.items.filter((x) => x.spec.username === `system:serviceaccount:${NS}:kubexen-host-${h}`);
        assert.ok(mine.length >= 1, `${h} asked for its certificate`);
        const issued = mine.find((x) => x.status?.certificate);
        assert.ok(
          issued?.status?.conditions?.some((x) => x.type === "Approved"),
          `${h}'s request was approved`,
        );
        const { X509Certificate } = await import("node:crypto");
        assert.equal(new X509Certificate(Buffer.from(issued?.status?.certificate ?? "", "base64")).subject, `CN=${h}`);
      }
      // What a host may mount: the CA's certificate, published by the operator under the chart's RBAC.
      const cm = await cp.kubectlOk(["get", "-n", NS, "configmap/kubexen-migration-ca", "-o", "jsonpath={.data}"]);
      const data = JSON.parse(cm) as Record<string, string>;
      assert.deepEqual(Object.keys(data), ["ca.crt"]);
      assert.match(data["ca.crt"] ?? "", /BEGIN CERTIFICATE/);
    });

    it("creates, migrates and deletes a domain with only the chart's RBAC", async () => {
      const c = admin();
      await c.create(resources.xenDomains, {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenDomain",
        metadata: { name: "web", namespace: "apps" },
        spec: { memory: "256Mi", boot: { kernel: "/boot/vmlinuz" } },
      });
      const xd = () => c.get<XenDomain>(resources.xenDomains, "web", "apps");
      await until("running", async () => (await xd()).status?.phase === "Running", 60_000);
      const from = (await xd()).status?.host;
      // The operator reports the policy in force through the status it may patch (and nothing else of it).
      await c.create(resources.xenMigrationPolicies, {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenMigrationPolicy",
        metadata: { name: "default" },
        spec: { parallelMigrationsPerCluster: 4 },
      });
      await until("the policy in force", async () => {
        const p = await c.get<XenMigrationPolicy>(resources.xenMigrationPolicies, "default");
        const ready = p.status?.conditions?.find((x) => x.type === "Ready");
        return p.status?.observedGeneration === 1 && /^in force: 4 transfers in the cluster/.test(ready?.message ?? "");
      });
      await c.create(resources.xenMigrations, {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenMigration",
        metadata: { name: "move", namespace: "apps" },
        spec: { domain: "web" },
      });
      await until(
        "migrated",
        async () => (await c.get<XenMigration>(resources.xenMigrations, "move", "apps")).status?.phase === "Succeeded",
        60_000,
      );
      await until("running on the other host", async () => {
        const d = await xd();
        return d.status?.phase === "Running" && d.status.host !== from;
      });
      await c.delete(resources.xenDomains, "web", "apps");
      await until("deleted", async () => !(await c.getOrUndefined(resources.xenDomains, "web", "apps")), 60_000);
      assert.equal((await fleet.sims.get("h1")?.listDomains())?.length ?? 0, 0);
      assert.equal((await fleet.sims.get("h2")?.listDomains())?.length ?? 0, 0);
    });

    it("denies an agent another host's XenHost and Lease, and an unbound domain's status", async () => {
      const h1 = new KubeClient(agentKc.get("h1") as KubeConfig, { metrics: new SdkMetrics() });
      const status = (name: string) => ({
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenHost",
        metadata: { name },
        status: { domainCount: 0 },
      });
      await h1.applyStatus(resources.xenHosts, status("h1"), "test");
      await assert.rejects(
        h1.applyStatus(resources.xenHosts, status("h2"), "test"),
        /the agent of h1 may write only XenHost h1, not h2/,
      );
      await assert.rejects(
        h1.request("POST", `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`, {
          body: {
            apiVersion: "coordination.k8s.io/v1",
            kind: "Lease",
            metadata: { name: "xenhost-h2", namespace: NS },
            spec: { holderIdentity: "h1" },
          },
        }),
        /may write only its Lease xenhost-h1/,
      );
      const c = admin();
      await c.create(resources.xenDomains, {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenDomain",
        metadata: { name: "unbound", namespace: "apps" },
        spec: { memory: "64Mi", boot: { kernel: "/boot/vmlinuz" }, hostSelector: { none: "matches" } },
      });
      await assert.rejects(
        h1.applyStatus(
          resources.xenDomains,
          {
            apiVersion: "kubexen.io/v1alpha1",
            kind: "XenDomain",
            metadata: { name: "unbound", namespace: "apps" },
            status: { phase: "Running" },
          },
          "test",
        ),
        /may write the status only of domains bound to it/,
      );
      // RBAC: an agent cannot touch specs or delete anything.
      await assert.rejects(h1.delete(resources.xenDomains, "unbound", "apps"), /403|forbidden/i);
    });

    it("knows a DaemonSet agent by the node its token is bound to", async () => {
      // A Node and a Pod of the DaemonSet's ServiceAccount on it, as the kubelet would run it.
      await cp.kubectlOk(["apply", "-f", "-"], {
        input: JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name: "node-a" } }),
      });
      const pod = JSON.parse(
        await cp.kubectlOk(["create", "-o", "json", "-f", "-"], {
          input: JSON.stringify({
            apiVersion: "v1",
            kind: "Pod",
            metadata: { name: "agent-node-a", namespace: NS },
            spec: {
              nodeName: "node-a",
              serviceAccountName: "kubexen-agent",
              containers: [{ name: "agent", image: "kubexen/node-agent" }],
            },
          }),
        }),
      );
      const core = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
      const tr = await core.request<{ status: { token: string } }>(
        "POST",
        `/api/v1/namespaces/${NS}/serviceaccounts/kubexen-agent/token`,
        {
          body: {
            apiVersion: "authentication.k8s.io/v1",
            kind: "TokenRequest",
            spec: {
              expirationSeconds: 3600,
              boundObjectRef: { kind: "Pod", apiVersion: "v1", name: pod.metadata.name, uid: pod.metadata.uid },
            },
          },
        },
      );
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [
          {
            name: "c",
            server: cp.kubeConfig().getCurrentCluster()?.server ?? "",
            caData: cp.kubeConfig().getCurrentCluster()?.caData,
          },
        ],
        users: [{ name: "u", token: tr.status.token }],
        contexts: [{ name: "x", cluster: "c", user: "u" }],
        currentContext: "x",
      });
      const agent = new KubeClient(kc, { metrics: new SdkMetrics() });
      const host = (name: string) => ({ apiVersion: "kubexen.io/v1alpha1", kind: "XenHost", metadata: { name } });
      await agent.apply(resources.xenHosts, host("node-a"), { fieldManager: "test" });
      await assert.rejects(
        agent.apply(resources.xenHosts, host("h2"), { fieldManager: "test" }),
        /the agent of node-a may write only XenHost node-a, not h2/,
      );
    });

    it("denies the operator Secrets it does not need", async () => {
      await assert.rejects(
        opClient.request("GET", `/api/v1/namespaces/${NS}/secrets/kubexen-migration`),
        /403|forbidden/i,
      );
      await assert.rejects(opClient.request("GET", `/api/v1/namespaces/${NS}/secrets`), /403|forbidden/i);
    });
  });
});

describe("Argo CD health checks", () => {
  const lua = (kind: string, obj: unknown) => {
    const dir = mkdtempSync(join(tmpdir(), "kubexen-health-"));
    const runner = join(dir, "run.lua");
    writeFileSync(
      runner,
      `obj = ${toLua(obj)}\nlocal hs = dofile(${JSON.stringify(join(chart, "argocd", `${kind}.lua`))})\nio.write(hs.status .. "|" .. (hs.message or ""))\n`,
    );
    return run("lua5.4", [runner]).then((r) => r.stdout);
  };
  const cond = (type: string, status: string, message = "m") => ({ type, status, reason: "R", message });
  const o = (generation: number, status: Record<string, unknown> | undefined) => ({
    metadata: { name: "x", generation },
    ...(status ? { status } : {}),
  });

  it("reads kstatus and phases for every kind", async () => {
    const cases: Array<[string, unknown, string]> = [
      ["XenDomain", o(1, undefined), "Progressing"],
      ["XenDomain", o(1, { observedGeneration: 1, phase: "Running", conditions: [cond("Ready", "True")] }), "Healthy"],
      [
        "XenDomain",
        o(2, { observedGeneration: 1, phase: "Running", conditions: [cond("Ready", "True")] }),
        "Progressing",
      ],
      [
        "XenDomain",
        o(1, {
          observedGeneration: 1,
          phase: "Starting",
          conditions: [cond("Ready", "False"), cond("Reconciling", "True")],
        }),
        "Progressing",
      ],
      [
        "XenDomain",
        o(1, { observedGeneration: 1, phase: "Failed", conditions: [cond("Stalled", "True", "no kernel")] }),
        "Degraded",
      ],
      [
        "XenDomain",
        o(1, { observedGeneration: 1, phase: "CrashLoopBackOff", conditions: [cond("Ready", "False")] }),
        "Degraded",
      ],
      [
        "XenDomain",
        o(1, { phase: "Unschedulable", conditions: [cond("Scheduled", "False", "0/3 hosts available")] }),
        "Degraded",
      ],
      [
        "XenDomain",
        o(1, { observedGeneration: 1, phase: "Stopped", conditions: [cond("Ready", "True")] }),
        "Suspended",
      ],
      ["XenHost", o(1, { conditions: [cond("Ready", "True")] }), "Healthy"],
      ["XenHost", o(1, { conditions: [cond("Ready", "False", "lease expired")] }), "Degraded"],
      ["XenHost", o(1, { conditions: [cond("Ready", "False"), cond("Fenced", "True", "window passed")] }), "Degraded"],
      ["XenMigration", o(1, { phase: "Transferring" }), "Progressing"],
      ["XenMigration", o(1, { phase: "Succeeded" }), "Healthy"],
      ["XenMigration", o(1, { phase: "Aborted", failureReason: "timeout" }), "Degraded"],
      ["XenMaintenance", o(1, { phase: "Draining", message: "3 left", observedGeneration: 1 }), "Progressing"],
      [
        "XenMaintenance",
        o(1, { phase: "Drained", observedGeneration: 1, conditions: [cond("Ready", "True")] }),
        "Healthy",
      ],
      [
        "XenMaintenance",
        o(1, { phase: "Blocked", message: "2 blocked", observedGeneration: 1, conditions: [cond("Stalled", "True")] }),
        "Degraded",
      ],
      ["XenBalancer", o(1, { observedGeneration: 1, conditions: [cond("Ready", "True")] }), "Healthy"],
      ["XenMigrationPolicy", o(1, undefined), "Progressing"],
      ["XenMigrationPolicy", o(1, { observedGeneration: 1, conditions: [cond("Ready", "True")] }), "Healthy"],
      ["XenMigrationPolicy", o(2, { observedGeneration: 1, conditions: [cond("Ready", "True")] }), "Progressing"],
    ];
    for (const [kind, obj, want] of cases) {
      const out = await lua(kind, obj);
      assert.equal(out.split("|")[0], want, `${kind} ${JSON.stringify(obj)} -> ${out}`);
    }
    assert.match(
      await lua("XenMigration", o(1, { phase: "Failed", failureReason: "refused" })),
      /Degraded\|Failed: refused/,
    );
  });
});

describe("Dockerfiles", () => {
  it("pass hadolint", async () => {
    const hadolint = join(process.env.KUBEXEN_CACHE ?? join(homedir(), ".cache/kubexen"), "tools/venv/bin/hadolint");
    for (const f of ["operator/Dockerfile", "node-agent/Dockerfile"]) {
      const r = await run(hadolint, ["--config", join(root, ".hadolint.yaml"), join(root, f)]).catch((e) => e);
      assert.equal(r.code ?? 0, 0, `${f}: ${r.stdout}${r.stderr}`);
    }
    // And the linter does fail on a bad one.
    const dir = mkdtempSync(join(tmpdir(), "kubexen-df-"));
    writeFileSync(join(dir, "Dockerfile"), "FROM debian\nRUN cd /tmp && apt-get install curl\n");
    const bad = await run(hadolint, ["--config", join(root, ".hadolint.yaml"), join(dir, "Dockerfile")]).catch(
      (e) => e,
    );
    assert.notEqual(bad.code ?? 0, 0);
  });
});

/** A JSON value as a Lua table constructor. */
function toLua(v: unknown): string {
  if (v === null || v === undefined) return "nil";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `{${v.map(toLua).join(", ")}}`;
  return `{${Object.entries(v as Record<string, unknown>)
    .map(([k, x]) => `[${JSON.stringify(k)}] = ${toLua(x)}`)
    .join(", ")}}`;
}
