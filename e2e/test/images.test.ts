// The images the chart pulls, built by `npm run images` (cached: rebuilt only when their inputs
// changed) and run for real through testcontainers, as the chart's pods would run them: the
// operator with the chart's Deployment args, identity and security context against a real
// control plane; the node agent with the DaemonSet's args, init containers and mounts, taken
// from the rendered chart, on the sim driver (no Xen here). A broken image must fail the checks.
// Docker on a laptop or podman here (e2e/src/containers.ts).
import assert from "node:assert/strict";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { KubeClient, SdkMetrics } from "@kubexen/sdk";
import { GenericContainer, getContainerRuntimeClient, type StartedTestContainer, Wait } from "testcontainers";
import { parseAllDocuments } from "yaml";
import { type ContainerApi, useContainerApi } from "../src/containers.ts";
import { ControlPlane } from "../src/controlplane/controlplane.ts";
import { freePort } from "../src/controlplane/ports.ts";
import { type BuiltImage, buildImages, imageRef, version } from "../src/images.ts";
import { until } from "../src/wait.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const chart = join(root, "charts/kubexen");
const NS = "kubexen-system";

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}
interface Mount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}
interface PodContainer {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: Array<{ containerPort: number }>;
  volumeMounts?: Mount[];
  securityContext?: {
    privileged?: boolean;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[] };
  };
}
interface Volume {
  name: string;
  hostPath?: { path: string };
  secret?: { secretName: string; defaultMode?: number };
  configMap?: { name: string };
  emptyDir?: object;
}
interface PodSpec {
  serviceAccountName: string;
  securityContext?: { fsGroup?: number };
  initContainers?: PodContainer[];
  containers: PodContainer[];
  volumes?: Volume[];
}

/** testcontainers has no switch for a read-only root filesystem; the chart's operator has one. */
class PodLikeContainer extends GenericContainer {
  withReadOnlyRootFilesystem(): this {
    this.hostConfig.ReadonlyRootfs = true;
    return this;
  }
}

describe("images", () => {
  let api: ContainerApi;
  let cp: ControlPlane;
  let images: Record<string, BuiltImage>;
  let rendered: Array<{ kind: string; metadata: { name: string }; spec: { template: { spec: PodSpec } } }>;
  const scratch = mkdtempSync(join(tmpdir(), "kubexen-images-"));
  const started: StartedTestContainer[] = [];

  before(
    async () => {
      api = await useContainerApi();
      const t0 = Date.now();
      const built = await buildImages({ engine: api.engine, log: (l) => process.stderr.write(`${l}\n`) });
      images = Object.fromEntries(built.map((b) => [b.component, b]));
      process.stderr.write(`images: ready in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
      cp = await ControlPlane.start();
      // The chart as a user installs it, naming the images where this machine has them.
      const r = await cp.helm([
        "install",
        "kubexen",
        chart,
        "-n",
        NS,
        "--create-namespace",
        "--set",
        "image.registry=localhost",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const t = await cp.helm(["template", "kubexen", chart, "-n", NS, "--set", "image.registry=localhost"]);
      assert.equal(t.code, 0, t.stderr);
      rendered = parseAllDocuments(t.stdout)
        .map((d) => d.toJS())
        .filter((d) => d?.kind);
      // The first build on a machine makes the base images from Debian packages: minutes, with progress.
    },
    { timeout: 45 * 60_000 },
  );
  after(async () => {
    for (const c of started) await c.stop({ timeout: 5_000 }).catch(() => {});
    await cp?.stop();
    await api?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  const podSpec = (kind: string, name: string): PodSpec => {
    const o = rendered.find((d) => d.kind === kind && d.metadata.name === name);
    assert.ok(o, `the chart renders no ${kind} ${name}`);
    return o.spec.template.spec;
  };

  /** What the kubelet mounts for the pod's ServiceAccount, with a token the API server issued for it. */
  const serviceAccountDir = async (sa: string, token: string): Promise<string> => {
    const dir = mkdtempSync(join(scratch, `sa-${sa}-`));
    const cluster = cp.kubeConfig().getCurrentCluster();
    writeFileSync(join(dir, "token"), token);
    writeFileSync(join(dir, "ca.crt"), Buffer.from(cluster?.caData ?? "", "base64"));
    writeFileSync(join(dir, "namespace"), NS);
    for (const f of ["token", "ca.crt", "namespace"]) chmodSync(join(dir, f), 0o644);
    chmodSync(dir, 0o755);
    return dir;
  };
  const tokenFor = async (sa: string, boundPod?: { name: string; uid: string }): Promise<string> => {
    const client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
    const tr = await client.request<{ status: { token: string } }>(
      "POST",
      `/api/v1/namespaces/${NS}/serviceaccounts/${sa}/token`,
      {
        body: {
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenRequest",
          spec: {
            expirationSeconds: 3600,
            ...(boundPod ? { boundObjectRef: { kind: "Pod", apiVersion: "v1", ...boundPod } } : {}),
          },
        },
      },
    );
    return tr.status.token;
  };

  /**
   * A container as the kubelet would start it from the pod spec, on the host's network: the env
   * with the pod's fields filled in, `$(VAR)` expanded in command and args, each volume a host
   * directory (a hostPath's under the scratch directory, since this machine has no Xen), each
   * listening port of the spec moved to a free one (other tests share the host's network).
   */
  const podContainer = async (
    spec: PodSpec,
    c: PodContainer,
    o: {
      image: string;
      fields: Record<string, string>;
      volumeDirs: Map<string, string>;
      saDir: string;
      ports: Map<number, number>;
      args?: (args: string[]) => string[];
      output: string[];
    },
  ): Promise<PodLikeContainer> => {
    const env: Record<string, string> = {};
    for (const e of c.env ?? []) {
      const v = e.valueFrom?.fieldRef ? o.fields[e.valueFrom.fieldRef.fieldPath] : e.value;
      assert.ok(v !== undefined, `${c.name}: env ${e.name} has no value here`);
      env[e.name] = v;
    }
    const expand = (s: string) => {
      let out = s.replace(/\$\((\w+)\)/g, (_, n: string) => env[n] ?? `$(${n})`);
      for (const [from, to] of o.ports) out = out.replace(new RegExp(`([=:])${from}\\b`, "g"), `$1${to}`);
      return out;
    };
    const server = new URL(cp.server);
    const container = new PodLikeContainer(o.image)
      .withNetworkMode("host")
      .withEnvironment({ ...env, KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port })
      .withLogConsumer((s) => s.on("data", (d: Buffer) => o.output.push(d.toString())));
    if (c.command) container.withEntrypoint(c.command.map(expand));
    const args = (c.args ?? []).map(expand);
    container.withCommand(o.args ? o.args(args) : args);
    const mounts: Array<{ source: string; target: string; mode: "ro" | "rw" }> = [
      { source: o.saDir, target: "/var/run/secrets/kubernetes.io/serviceaccount", mode: "ro" },
    ];
    for (const m of c.volumeMounts ?? []) {
      // runc mounts nothing but procfs under /proc; /proc/xen (xenfs) exists only on a Xen host,
      // where the real-Xen lab runs the agent (e2e/xenlab).
      if (m.mountPath.startsWith("/proc/")) continue;
      const dir = o.volumeDirs.get(m.name);
      assert.ok(dir, `${c.name}: volume ${m.name} is not one this test knows how to provide`);
      mounts.push({ source: dir, target: m.mountPath, mode: m.readOnly ? "ro" : "rw" });
    }
    container.withBindMounts(mounts);
    const sc = c.securityContext;
    if (sc?.privileged) container.withPrivilegedMode();
    if (sc?.readOnlyRootFilesystem) container.withReadOnlyRootFilesystem();
    if (sc?.allowPrivilegeEscalation === false) container.withSecurityOpt("no-new-privileges");
    if (sc?.capabilities?.drop) container.withDroppedCapabilities(...sc.capabilities.drop);
    assert.ok(spec.serviceAccountName);
    return container;
  };

  /** Each volume of the pod as a host directory: hostPaths and emptyDirs empty, Secrets with their keys. */
  const volumeDirs = async (spec: PodSpec, tag: string): Promise<Map<string, string>> => {
    const dirs = new Map<string, string>();
    for (const v of spec.volumes ?? []) {
      const dir = join(scratch, tag, v.name);
      mkdirSync(dir, { recursive: true });
      if (v.secret) {
        const s = JSON.parse(await cp.kubectlOk(["get", "-n", NS, "secret", v.secret.secretName, "-o", "json"]));
        for (const [k, b64] of Object.entries(s.data as Record<string, string>)) {
          writeFileSync(join(dir, k), Buffer.from(b64, "base64"));
          chmodSync(join(dir, k), v.secret.defaultMode ?? 0o644);
          // As the kubelet does: the pod's fsGroup owns its volumes' files.
          if (spec.securityContext?.fsGroup !== undefined) chownSync(join(dir, k), 0, spec.securityContext.fsGroup);
        }
      } else if (v.configMap) {
        // As the kubelet, which holds the pod until its ConfigMap exists.
        const name = v.configMap.name;
        let data: Record<string, string> | undefined;
        await until(
          `ConfigMap ${name}`,
          async () => {
            const r = await cp.kubectl(["get", "-n", NS, "configmap", name, "-o", "json"]);
            data = r.code === 0 ? (JSON.parse(r.stdout).data as Record<string, string>) : undefined;
            return !!data;
          },
          60_000,
        );
        for (const [k, text] of Object.entries(data ?? {})) writeFileSync(join(dir, k), text);
      } else assert.ok(v.hostPath || v.emptyDir, `volume ${v.name}: neither hostPath, emptyDir, secret nor configMap`);
      dirs.set(v.name, dir);
    }
    return dirs;
  };

  const freePorts = async (containers: PodContainer[]): Promise<Map<number, number>> => {
    const m = new Map<number, number>();
    for (const c of containers) for (const p of c.ports ?? []) m.set(p.containerPort, await freePort());
    return m;
  };

  const exited = async (c: StartedTestContainer): Promise<string | undefined> => {
    const info = await (await getContainerRuntimeClient()).container.getById(c.getId()).inspect();
    return info.State.Running ? undefined : `exited with code ${info.State.ExitCode}`;
  };

  /** Polls `check` until it holds, failing at once (with the container's output) if the container has exited. */
  const untilRunning = async (
    c: StartedTestContainer,
    what: string,
    output: string[],
    check: () => Promise<boolean>,
    ms: number,
  ): Promise<void> => {
    const end = Date.now() + ms;
    let last: unknown;
    while (Date.now() < end) {
      const gone = await exited(c);
      if (gone) throw new Error(`waiting for ${what}, the container ${gone}:\n${output.join("").slice(-3000)}`);
      try {
        if (await check()) return;
      } catch (err) {
        last = err;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`timed out waiting for ${what} (${last}):\n${output.join("").slice(-3000)}`);
  };

  it("the chart's default image tag is the project's version, and the images carry it", async () => {
    const op = podSpec("Deployment", "kubexen-operator").containers[0];
    const agent = podSpec("DaemonSet", "kubexen-agent").containers[0];
    assert.equal(op?.image, imageRef("operator"));
    assert.equal(agent?.image, imageRef("node-agent"));
    assert.match(imageRef("operator"), new RegExp(`:${version.replace(/\./g, "\\.")}$`));
    for (const c of ["operator", "node-agent"]) {
      const cfg = JSON.parse(
        await api.engine.run(["image", "inspect", "--format", "{{json .Config}}", imageRef(c as "operator")]),
      );
      assert.equal(cfg.Labels["org.opencontainers.image.version"], version);
      assert.deepEqual(cfg.Entrypoint, ["node", `/app/${c}/src/main.ts`]);
    }
  });

  it("runs the operator image as the chart does: non-root 65532, read-only root, ready and leading", async () => {
    const spec = podSpec("Deployment", "kubexen-operator");
    const c = spec.containers[0];
    assert.ok(c);
    const podName = "kubexen-operator-image-test";
    const ports = await freePorts([c]);
    const output: string[] = [];
    const container = await podContainer(spec, c, {
      image: images.operator?.ref ?? "",
      fields: { "metadata.name": podName, "metadata.namespace": NS, "status.podIP": "127.0.0.1" },
      volumeDirs: await volumeDirs(spec, "operator"),
      saDir: await serviceAccountDir(spec.serviceAccountName, await tokenFor(spec.serviceAccountName)),
      ports,
      output,
    });
    const t0 = Date.now();
    const op = await container.start();
    started.push(op);
    const healthArg = c.args?.find((a) => a.startsWith("--health-port="));
    const healthPort = ports.get(Number(healthArg?.split("=")[1]));
    assert.ok(healthPort, "the Deployment names a health port");
    await untilRunning(
      op,
      "the operator's /readyz",
      output,
      async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).ok,
      90_000,
    );
    await untilRunning(
      op,
      "the operator to hold a Lease",
      output,
      async () =>
        (await cp.kubectlOk(["get", "lease", "-n", NS, "-o", "jsonpath={.items[*].spec.holderIdentity}"])).includes(
          podName,
        ),
      60_000,
    );
    process.stderr.write(`operator image: ready and leading in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    const status = await op.exec(["cat", "/proc/1/status"]);
    assert.match(status.output, /^Uid:\s+65532\s+65532/m, status.output);
    assert.match(status.output, /^Gid:\s+65532\s+65532/m);
    const write = await op.exec(["touch", "/app/x"]);
    assert.notEqual(write.exitCode, 0, "the root filesystem is read-only");
  });

  /** Runs the agent image as the DaemonSet's pod, init containers first; resolves when its XenHost is Ready. */
  const runAgent = async (image: string, node: string, timeoutMs: number): Promise<StartedTestContainer> => {
    const spec = podSpec("DaemonSet", "kubexen-agent");
    // As the kubelet would: a Node, the pod on it, and a token bound to that pod (the admission
    // policy knows the agent by the node its token is bound to).
    await cp.kubectlOk(["apply", "-f", "-"], {
      input: JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name: node } }),
    });
    const pod = JSON.parse(
      await cp.kubectlOk(["create", "-o", "json", "-f", "-"], {
        input: JSON.stringify({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: `kubexen-agent-${node}`, namespace: NS },
          spec: { nodeName: node, serviceAccountName: spec.serviceAccountName, containers: [{ name: "agent", image }] },
        }),
      }),
    );
    const saDir = await serviceAccountDir(
      spec.serviceAccountName,
      await tokenFor(spec.serviceAccountName, { name: pod.metadata.name, uid: pod.metadata.uid }),
    );
    const fields = {
      "spec.nodeName": node,
      "status.hostIP": "127.0.0.1",
      "metadata.name": pod.metadata.name,
      "metadata.namespace": NS,
    };
    const dirs = await volumeDirs(spec, node);
    const ports = await freePorts(spec.containers);
    for (const ic of spec.initContainers ?? []) {
      const output: string[] = [];
      const init = await podContainer(spec, ic, { image, fields, volumeDirs: dirs, saDir, ports, output });
      const t0 = Date.now();
      await assert.doesNotReject(
        init.withWaitStrategy(Wait.forOneShotStartup()).withStartupTimeout(60_000).start(),
        `init container ${ic.name}: ${output.join("")}`,
      );
      process.stderr.write(
        `agent image: init container ${ic.name} succeeded in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
      );
    }
    const c = spec.containers[0];
    assert.ok(c);
    assert.ok(c.args?.includes("--driver=xl"), `the DaemonSet drives xl: ${c.args?.join(" ")}`);
    const output: string[] = [];
    const container = await podContainer(spec, c, {
      image,
      fields,
      volumeDirs: dirs,
      saDir,
      ports,
      output,
      // No Xen here: the sim driver stands in for xl, and its watchdog for Xen's (xen_wdt);
      // everything else is the chart's.
      args: (args) =>
        args.map((a) => (a === "--driver=xl" ? "--driver=sim" : a.startsWith("--fencing=") ? "--fencing=sim" : a)),
    });
    const t0 = Date.now();
    const agent = await container.start();
    started.push(agent);
    await untilRunning(
      agent,
      `XenHost ${node} Ready`,
      output,
      async () =>
        (
          await cp.kubectlOk(["get", "xenhost", node, "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])
        ).trim() === "True",
      timeoutMs,
    );
    process.stderr.write(`agent image: XenHost ${node} Ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    return agent;
  };

  it("runs the node-agent image with the DaemonSet's args, init containers and mounts: its XenHost becomes Ready, and the operator image signs its migration certificate", async () => {
    const agent = await runAgent(images["node-agent"]?.ref ?? "", "image-node-a", 90_000);
    // The agent asked for its certificate through the CSR API; the operator's container (previous
    // test) approved and signed it; only then does the host advertise where to send migrations.
    await until(
      "the agent's migration endpoint",
      async () =>
        (await cp.kubectlOk(["get", "xenhost", "image-node-a", "-o", "jsonpath={.status.migrationEndpoint}"])) !== "",
      120_000,
    );
    const issued = await cp.kubectlOk(["get", "csr", "-o", "jsonpath={.items[*].status.certificate}"]);
    assert.ok(issued.trim().length > 0, "a signed CertificateSigningRequest");
    const status = await agent.exec(["cat", "/proc/1/status"]);
    assert.match(status.output, /^Uid:\s+0\s/m, "the agent runs as root, for xl");
    // The read-only mounts are read-only inside the container.
    const ro = await agent.exec(["touch", "/etc/kubexen/migration/x"]);
    assert.notEqual(ro.exitCode, 0);
  });

  it("notices a broken image: an agent image whose entrypoint is wrong never gets its host Ready", async () => {
    const dir = mkdtempSync(join(scratch, "broken-"));
    const broken = `localhost/kubexen/node-agent:${version}-broken`;
    writeFileSync(
      join(dir, "Containerfile"),
      `FROM ${images["node-agent"]?.ref}\nENTRYPOINT ["node", "/app/node-agent/src/no-such-main.ts"]\n`,
    );
    await api.engine.run(["build", "-t", broken, "-f", join(dir, "Containerfile"), dir]);
    try {
      await assert.rejects(
        runAgent(broken, "image-node-broken", 30_000),
        /exited with code [1-9]|MODULE_NOT_FOUND|Cannot find module/,
      );
    } finally {
      await api.engine.run(["rmi", "-f", broken]).catch(() => {});
    }
  });
});
