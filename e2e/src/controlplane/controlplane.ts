// A real Kubernetes control plane (etcd + kube-apiserver) on loopback for
// tests, the demo and benchmarks. Nothing here is simulated: CRD schemas, CEL
// validation, server-side apply, watches and RBAC are the real thing.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api, type V1ClusterRole } from "@kubernetes/client-node";
import { logger } from "../log.ts";
import { type Supervised, startSupervised } from "../supervised.ts";
import { type Binaries, binaries } from "./binaries.ts";
import { writeKubeconfig } from "./kubeconfig.ts";
import { issue, makePki, type Pki, readBase64 } from "./pki.ts";
import { freePort } from "./ports.ts";

export interface ControlPlaneOptions {
  /** Working directory (data, certificates, logs); a fresh temporary one by default. */
  dir?: string;
  /** Keep the directory after stop (logs for a failed test). Default: KUBEXEN_KEEP=1. */
  keep?: boolean;
  /** Extra kube-apiserver flags. */
  apiserverArgs?: string[];
  /** Fixed secure port (for the demo); a free one by default. */
  port?: number;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

const log = logger.child({ component: "controlplane" });

async function poll(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 50;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 500);
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms`);
}

function runCommand(file: string, args: string[], input?: string, env?: NodeJS.ProcessEnv): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { maxBuffer: 64 << 20, env }, (err, stdout, stderr) => {
      const code = err
        ? typeof (err as { code?: unknown }).code === "number"
          ? (err as { code: number }).code
          : 1
        : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

export class ControlPlane {
  readonly dir: string;
  readonly bin: Binaries;
  readonly pki: Pki;
  readonly server: string;
  /** Admin kubeconfig (system:masters). */
  readonly kubeconfigPath: string;
  /**
   * The admin identity with a bearer token instead of a client certificate:
   * how service accounts (the chart's operator and agents) authenticate. The
   * API server verifies a client certificate's chain on every request, which
   * at scale costs it a tenth of its CPU; a token it looks up.
   */
  readonly tokenKubeconfigPath: string;
  readonly port: number;
  private readonly etcdUrl: string;
  private readonly keep: boolean;
  private readonly apiserverArgs: string[];
  private etcd?: Supervised;
  private etcdPeerPort = 0;
  private apiserver?: Supervised;
  private stopped = false;

  private constructor(init: {
    dir: string;
    bin: Binaries;
    pki: Pki;
    port: number;
    etcdUrl: string;
    kubeconfigPath: string;
    tokenKubeconfigPath: string;
    keep: boolean;
    apiserverArgs: string[];
  }) {
    this.dir = init.dir;
    this.bin = init.bin;
    this.pki = init.pki;
    this.port = init.port;
    this.server = `https://127.0.0.1:${init.port}`;
    this.etcdUrl = init.etcdUrl;
    this.kubeconfigPath = init.kubeconfigPath;
    this.tokenKubeconfigPath = init.tokenKubeconfigPath;
    this.keep = init.keep;
    this.apiserverArgs = init.apiserverArgs;
  }

  static async start(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const t0 = performance.now();
    const bin = await binaries();
    const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "kubexen-cp-")));
    await mkdir(dir, { recursive: true });
    const pki = await makePki(dir);
    const [port, etcdClient, etcdPeer] = await Promise.all([opts.port ?? freePort(), freePort(), freePort()]);
    const server = `https://127.0.0.1:${port}`;
    const kubeconfigPath = await writeKubeconfig(
      join(dir, "admin.kubeconfig"),
      server,
      await readBase64(pki.ca.certFile),
      "kubexen-admin",
      { kind: "cert", certData: await readBase64(pki.admin.certFile), keyData: await readBase64(pki.admin.keyFile) },
    );
    const token = randomBytes(24).toString("hex");
    await writeFile(join(dir, "tokens.csv"), `${token},kubexen-admin-token,kubexen-admin-token,system:masters\n`, {
      mode: 0o600,
    });
    const tokenKubeconfigPath = await writeKubeconfig(
      join(dir, "admin-token.kubeconfig"),
      server,
      await readBase64(pki.ca.certFile),
      "kubexen-admin-token",
      { kind: "token", token },
    );
    const cp = new ControlPlane({
      dir,
      bin,
      pki,
      port,
      etcdUrl: `http://127.0.0.1:${etcdClient}`,
      kubeconfigPath,
      tokenKubeconfigPath,
      keep: opts.keep ?? process.env.KUBEXEN_KEEP === "1",
      apiserverArgs: opts.apiserverArgs ?? [],
    });
    try {
      await cp.startEtcd(etcdPeer);
      await cp.startApiServer();
    } catch (err) {
      await cp.stop();
      throw err;
    }
    log.info({ server, dir, ms: Math.round(performance.now() - t0) }, "control plane ready");
    return cp;
  }

  /** Starts etcd (again, after stopEtcd) on the same ports and data. */
  async startEtcd(peerPort = this.etcdPeerPort): Promise<void> {
    this.etcdPeerPort = peerPort;
    const peer = `http://127.0.0.1:${peerPort}`;
    this.etcd = startSupervised(
      "etcd",
      this.bin.etcd,
      [
        "--name=kubexen",
        `--data-dir=${join(this.dir, "etcd")}`,
        `--listen-client-urls=${this.etcdUrl}`,
        `--advertise-client-urls=${this.etcdUrl}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=kubexen=${peer}`,
        // Test data is disposable: skipping fsync makes etcd fast on slow disks.
        "--unsafe-no-fsync",
        "--log-level=warn",
        "--quota-backend-bytes=8589934592",
      ],
      { logFile: join(this.dir, "etcd.log") },
    );
    await poll("etcd", 30_000, async () => {
      if (!this.etcd?.running) throw new Error("etcd exited");
      return (await httpGet(`${this.etcdUrl}/health`)).includes('"health":"true"');
    }).catch(async (err) => {
      throw new Error(
        `${(err as Error).message}; see ${join(this.dir, "etcd.log")}:\n${await tail(join(this.dir, "etcd.log"))}`,
      );
    });
  }

  /** Starts kube-apiserver (again, after stopApiServer) on the same port and storage. */
  async startApiServer(): Promise<void> {
    const p = this.pki;
    this.apiserver = startSupervised(
      "kube-apiserver",
      this.bin.kubeApiserver,
      [
        `--etcd-servers=${this.etcdUrl}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        `--secure-port=${this.port}`,
        `--cert-dir=${join(this.dir, "apiserver-certs")}`,
        `--tls-cert-file=${p.server.certFile}`,
        `--tls-private-key-file=${p.server.keyFile}`,
        `--client-ca-file=${p.ca.certFile}`,
        `--token-auth-file=${join(this.dir, "tokens.csv")}`,
        "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        // As kubeadm clusters run: privileged pods (the node agent) are allowed.
        "--allow-privileged=true",
        `--service-account-key-file=${p.serviceAccount.publicKeyFile}`,
        `--service-account-signing-key-file=${p.serviceAccount.privateKeyFile}`,
        "--service-cluster-ip-range=10.0.0.0/24",
        "--enable-priority-and-fairness=false",
        "--profiling=false",
        "--v=1",
        ...this.apiserverArgs,
      ],
      { logFile: join(this.dir, "kube-apiserver.log") },
    );
    await poll("kube-apiserver", 90_000, async () => {
      if (!this.apiserver?.running) throw new Error("kube-apiserver exited");
      return (await this.rawGet("/readyz")).status === 200;
    }).catch(async (err) => {
      throw new Error(`${(err as Error).message}; log tail:\n${await tail(join(this.dir, "kube-apiserver.log"))}`);
    });
  }

  /** Stops kube-apiserver, as an outage would (etcd keeps the data). */
  async stopApiServer(opts: { kill?: boolean } = {}): Promise<void> {
    if (opts.kill) await this.apiserver?.kill();
    else await this.apiserver?.stop();
  }

  /** Stops etcd, as an outage would (its data stays for startEtcd). */
  async stopEtcd(opts: { kill?: boolean } = {}): Promise<void> {
    if (opts.kill) await this.etcd?.kill();
    else await this.etcd?.stop();
  }

  /**
   * Compacts etcd's history up to its current revision, as the API server's
   * periodic compaction would: watches from older resourceVersions then get
   * 410 Gone. Returns the revision.
   */
  async compactEtcd(): Promise<number> {
    const range = JSON.parse(
      await httpPost(`${this.etcdUrl}/v3/kv/range`, { key: Buffer.from("/").toString("base64") }),
    ) as {
      header: { revision: string };
    };
    const revision = Number(range.header.revision);
    await httpPost(`${this.etcdUrl}/v3/kv/compaction`, { revision, physical: true });
    return revision;
  }

  /** The pids of the processes this control plane runs. */
  pids(): number[] {
    return [this.etcd, this.apiserver].filter((c): c is Supervised => !!c && c.running).map((c) => c.pid);
  }

  /** A client-node KubeConfig for the admin identity (client certificate, or bearer token). */
  kubeConfig(opts: { token?: boolean } = {}): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(opts.token ? this.tokenKubeconfigPath : this.kubeconfigPath);
    return kc;
  }

  /** GET on the API server with admin credentials, outside client-node. */
  async rawGet(path: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
    const [ca, cert, key] = await Promise.all([
      readFile(this.pki.ca.certFile),
      readFile(this.pki.admin.certFile),
      readFile(this.pki.admin.keyFile),
    ]);
    return new Promise((resolve, reject) => {
      const req = request(`${this.server}${path}`, { ca, cert, key, timeout: timeoutMs }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("timeout", () => req.destroy(new Error(`GET ${path} timed out`)));
      req.on("error", reject);
      req.end();
    });
  }

  /** Runs the built kubectl against this control plane (admin unless `kubeconfig` is given). */
  kubectl(args: string[], opts: { input?: string; kubeconfig?: string } = {}): Promise<CommandResult> {
    return runCommand(
      this.bin.kubectl,
      [`--kubeconfig=${opts.kubeconfig ?? this.kubeconfigPath}`, ...args],
      opts.input,
    );
  }

  /** Runs kubectl and throws with its stderr when it fails. */
  async kubectlOk(args: string[], opts: { input?: string; kubeconfig?: string } = {}): Promise<string> {
    const r = await this.kubectl(args, opts);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Runs the built helm against this control plane. */
  helm(args: string[]): Promise<CommandResult> {
    const env = {
      ...process.env,
      KUBECONFIG: this.kubeconfigPath,
      HELM_CACHE_HOME: join(this.dir, "helm/cache"),
      HELM_CONFIG_HOME: join(this.dir, "helm/config"),
      HELM_DATA_HOME: join(this.dir, "helm/data"),
    };
    return runCommand(this.bin.helm, args, undefined, env);
  }

  /**
   * A kubeconfig that authenticates as a ServiceAccount through a bound token
   * from the TokenRequest API. The ServiceAccount must exist.
   */
  async serviceAccountKubeconfig(
    namespace: string,
    name: string,
    expirationSeconds = 3600,
  ): Promise<{ path: string; kubeConfig: KubeConfig }> {
    const core = this.kubeConfig().makeApiClient(CoreV1Api);
    const tr = await core.createNamespacedServiceAccountToken({
      name,
      namespace,
      body: { spec: { expirationSeconds, audiences: [] } },
    });
    const token = tr.status?.token;
    if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
    const path = await writeKubeconfig(
      join(this.dir, `sa-${namespace}-${name}.kubeconfig`),
      this.server,
      await readBase64(this.pki.ca.certFile),
      `system:serviceaccount:${namespace}:${name}`,
      { kind: "token", token },
    );
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(path);
    return { path, kubeConfig };
  }

  /**
   * A kubeconfig for a user of this cluster, as an organisation's identity provider would vouch for
   * one: a client certificate (CN = user, O = each group) from the cluster's CA. Its rights are
   * whatever RBAC grants the user and groups.
   */
  async userKubeconfig(user: string, groups: string[] = []): Promise<{ path: string; kubeConfig: KubeConfig }> {
    const file = `user-${user.replace(/[^A-Za-z0-9_.-]/g, "_")}`;
    const subject = [...groups.map((g) => `/O=${g}`), `/CN=${user}`].join("");
    const pair = await issue(
      this.dir,
      this.pki.ca,
      file,
      subject,
      ["basicConstraints=CA:FALSE", "keyUsage=digitalSignature,keyEncipherment", "extendedKeyUsage=clientAuth"].join(
        "\n",
      ),
    );
    const path = await writeKubeconfig(
      join(this.dir, `${file}.kubeconfig`),
      this.server,
      await readBase64(this.pki.ca.certFile),
      user,
      { kind: "cert", certData: await readBase64(pair.certFile), keyData: await readBase64(pair.keyFile) },
    );
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(path);
    return { path, kubeConfig };
  }

  /**
   * Fills each aggregated ClusterRole (view, edit, admin, ...) with the rules of the ClusterRoles its
   * aggregationRule selects, as kube-controller-manager's clusterrole-aggregation controller does:
   * this control plane runs no controller manager. Call it after installing roles.
   */
  async aggregateClusterRoles(): Promise<void> {
    const rbac = this.kubeConfig().makeApiClient(RbacAuthorizationV1Api);
    const selects = (sel: { matchLabels?: Record<string, string> }, role: V1ClusterRole) =>
      Object.entries(sel.matchLabels ?? {}).every(([k, v]) => role.metadata?.labels?.[k] === v);
    // Aggregated roles can be aggregated in turn (view into edit into admin): repeat until nothing changes.
    for (let pass = 0; pass < 10; pass++) {
      const roles = (await rbac.listClusterRole()).items;
      let changed = false;
      for (const role of roles) {
        const selectors = role.aggregationRule?.clusterRoleSelectors;
        if (!selectors) continue;
        const rules: NonNullable<V1ClusterRole["rules"]> = [];
        const seen = new Set<string>();
        for (const other of [...roles].sort((a, b) => (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""))) {
          if (other.metadata?.name === role.metadata?.name || !selectors.some((s) => selects(s, other))) continue;
          for (const r of other.rules ?? []) {
            const key = JSON.stringify(r);
            if (!seen.has(key)) rules.push(r);
            seen.add(key);
          }
        }
        if (JSON.stringify(rules) === JSON.stringify(role.rules ?? [])) continue;
        await rbac.replaceClusterRole({ name: role.metadata?.name ?? "", body: { ...role, rules } });
        changed = true;
      }
      if (!changed) return;
    }
  }

  /** Stops everything and removes the working directory (unless kept). Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.apiserver?.stop();
    await this.etcd?.stop();
    if (!this.keep) await rm(this.dir, { recursive: true, force: true });
    else log.info({ dir: this.dir }, "control plane directory kept");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

function httpPost(url: string, body: unknown): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: "POST", timeout: 5000, headers: { "content-type": "application/json" } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          text += c;
        });
        res.on("end", () =>
          res.statusCode === 200 ? resolve(text) : reject(new Error(`POST ${url}: ${res.statusCode} ${text}`)),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error(`POST ${url} timed out`)));
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { timeout: 2000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => resolve(body));
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

async function tail(file: string, lines = 30): Promise<string> {
  try {
    return (await readFile(file, "utf8")).split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}
