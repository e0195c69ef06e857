// `npm run demo`: kubexen on an embedded default. A real kube-apiserver and
// etcd on loopback, the CRDs, the operator, and three Xen hosts driven by the
// sim driver, each with its node agent; then the examples are applied and
// their progress shown. It stays up, printing the KUBECONFIG, until Ctrl-C.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { resources, type XenDomain } from "@kubexen/crds";
import { SimHypervisor } from "@kubexen/hypervisor";
import { NodeAgent } from "@kubexen/node-agent";
import { Operator } from "@kubexen/operator";
import { createLogger, KubeClient, SdkMetrics } from "@kubexen/sdk";
import { installKubexen } from "./cluster.ts";
import { ControlPlane } from "./controlplane/controlplane.ts";
import { issueHostCert, makeCa } from "./controlplane/pki.ts";
import { freePort } from "./controlplane/ports.ts";

const examples = fileURLToPath(new URL("../../examples", import.meta.url));
const HOSTS = ["xen-01", "xen-02", "xen-03"];
const log = createLogger("kubexen-demo", process.env.LOG_LEVEL ?? "warn");
const say = (msg: string) => console.log(`${new Date().toISOString().slice(11, 19)}  ${msg}`);

const cp = await ControlPlane.start();
const stops: Array<() => Promise<void>> = [];
let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping the operator, the agents and the control plane`);
  for (const s of stops.reverse()) await s().catch(() => {});
  await cp.stop();
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));

say(`control plane up at ${cp.server}`);
await installKubexen(cp);
say("kubexen CRDs installed");

const ca = await makeCa(cp.dir, "migration-ca");
const agents: NodeAgent[] = [];
for (const host of HOSTS) {
  const certs = await issueHostCert(cp.dir, ca, host);
  const port = await freePort();
  const sim = new SimHypervisor({ hostname: host, memoryMiB: 32768, cpus: 16, stateDir: join(cp.dir, "sim") });
  const agent = new NodeAgent({
    kubeConfig: cp.kubeConfig(),
    host,
    hypervisor: sim,
    logger: log,
    migrationEndpoint: `127.0.0.1:${port}`,
    migration: {
      tls: { cert: readFileSync(certs.certFile), key: readFileSync(certs.keyFile), ca: readFileSync(ca.certFile) },
      tokenKey: "demo-token-key",
      listenPort: port,
      listenHost: "127.0.0.1",
    },
  });
  await agent.start();
  agents.push(agent);
  stops.push(() => agent.stop());
  say(`host ${host}: sim Xen host (16 CPUs, 32 GiB) with its node agent, migration endpoint 127.0.0.1:${port}`);
}
await cp.kubectlOk(["label", "xenhost", "xen-01", "kubexen.io/tier=web"]);
const op = new Operator({ kubeConfig: cp.kubeConfig(), logger: log });
await op.start();
stops.push(() => op.stop());
say("operator started (leader-elected)");

process.stdout.write(await cp.kubectlOk(["apply", "-n", "default", "-k", examples]));

const client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
const seen = new Map<string, string>();
const deadline = Date.now() + 120_000;
for (;;) {
  const items = (await client.list<XenDomain>(resources.xenDomains, { namespace: "default" })).items;
  for (const d of items) {
    const line = `${d.status?.phase ?? "Pending"}${d.status?.host ? ` on ${d.status.host}` : ""}${d.status?.domid ? ` (domid ${d.status.domid})` : ""}`;
    if (seen.get(d.metadata.name ?? "") !== line) {
      seen.set(d.metadata.name ?? "", line);
      say(`xendomain/${d.metadata.name}: ${line}`);
    }
  }
  if ((items.length && items.every((d) => d.status?.phase === "Running")) || Date.now() > deadline) break;
  await new Promise((r) => setTimeout(r, 500));
}

await Promise.all(agents.map((a) => a.report()));
console.log(
  `\n${await cp.kubectlOk(["get", "xenhosts"])}\n${await cp.kubectlOk(["get", "xendomains", "-A", "-o", "wide"])}`,
);
const kubectl = join(cp.bin.dir, "kubectl");
console.log(`kubexen is up: ${cp.server}

In another terminal:
  export KUBECONFIG=${cp.kubeconfigPath}
  ${kubectl} get xen -A
  ${kubectl} get xd -w

Ctrl-C stops everything.`);
setInterval(() => {}, 1 << 30);
