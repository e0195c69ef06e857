// `npm run demo`: kubexen on an embedded default. A real kube-apiserver and
// etcd on loopback, the CRDs, the operator, and three Xen hosts driven by the
// sim driver, each with its node agent; then the examples are applied and
// their progress shown. It stays up, printing the KUBECONFIG, until Ctrl-C.
// `npm run demo -- --xen`: the same on two real Xen 4.17 hosts under QEMU
// (e2e/xenlab), with a small PVH guest they can boot.
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { resources, type XenDomain, type XenMigration } from "@kubexen/crds";
import { Operator } from "@kubexen/operator";
import { createLogger, KubeClient, SdkMetrics } from "@kubexen/sdk";
import { installKubexen } from "./cluster.ts";
import { ControlPlane } from "./controlplane/controlplane.ts";
import { startSimFleet } from "./fleet.ts";
import { XenLab } from "./xenlab/lab.ts";

const examples = fileURLToPath(new URL("../../examples", import.meta.url));
const HOSTS = ["xen-01", "xen-02", "xen-03"];
const onXen = process.argv.includes("--xen");
// The lab's guest: the hosts' own kernel and a busybox initrd that counts on its console.
const LAB_GUEST = `apiVersion: kubexen.io/v1alpha1
kind: XenDomain
metadata:
  name: web-1
spec:
  type: pvh
  memory: 128Mi
  boot:
    kernel: /guest/vmlinuz
    ramdisk: /guest/initrd
    cmdline: console=hvc0
  evictionStrategy: LiveMigrate
`;
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

let report = async () => {};
/** The migration CA of the hosts: the operator alone holds its key and signs every transfer. */
let migrationCa: { cert: string; key: string };
if (onXen) {
  say("booting two Xen 4.17 hosts under QEMU (the first run builds their disk image)");
  const dir = join(tmpdir(), `kubexen-demo-xenlab-${process.pid}`);
  const lab = await XenLab.start(cp, { dir, progress: (msg) => say(msg) });
  migrationCa = lab.migrationCa;
  stops.push(async () => {
    await lab.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  for (const h of lab.hosts)
    say(`host ${h.name}: Xen 4.17 under QEMU (${lab.accel}), node agent in dom0, console ${h.consoleFile}`);
} else {
  const fleet = await startSimFleet(
    cp,
    HOSTS.map((name) => ({ name, memoryMiB: 32768, cpus: 16 })),
    {
      logger: log,
      persist: true,
      // Where examples/ keeps its kernels, disks and ISOs, and its bridges.
      allowedPathRoots: [
        "/dev/vg0",
        "/var/lib/kubexen/images",
        "/var/lib/kubexen/kernels",
        "/var/lib/xen/images",
        "/var/lib/xen/iso",
      ],
      allowedBridges: ["xenbr0", "xenbr1"],
    },
  );
  stops.push(() => fleet.stop());
  migrationCa = fleet.migrationCa;
  for (const [name, sim] of fleet.sims)
    say(`host ${name}: sim Xen host (${sim.opts.cpus} CPUs, ${sim.opts.memoryMiB / 1024} GiB) with its node agent`);
  await cp.kubectlOk(["label", "xenhost", "xen-01", "xen-02", "kubexen.io/tier=web"]);
  // The closing table shows what the agents report now, not at their last interval.
  report = async () => {
    await Promise.all([...fleet.agents.values()].map((a) => a.report()));
  };
}
const op = new Operator({ kubeConfig: cp.kubeConfig(), migrationCa, logger: log });
await op.start();
stops.push(() => op.stop());
say("operator started (leader-elected)");

process.stdout.write(
  onXen
    ? await cp.kubectlOk(["apply", "-n", "default", "-f", "-"], { input: LAB_GUEST })
    : await cp.kubectlOk(["apply", "-n", "default", "-k", examples]),
);

const client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
const seen = new Map<string, string>();
const deadline = Date.now() + (onXen ? 600_000 : 120_000);
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

await report();
console.log(
  `\n${await cp.kubectlOk(["get", "xenhosts"])}\n${await cp.kubectlOk(["get", "xendomains", "-A", "-o", "wide"])}`,
);
// A live migration of web-1, with its phases and stats.
say("live-migrating web-1: a XenMigration without a target, so the operator chooses one");
await client.create(resources.xenMigrations, {
  apiVersion: "kubexen.io/v1alpha1",
  kind: "XenMigration",
  metadata: { name: "web-1-move", namespace: "default" },
  spec: { domain: "web-1" },
});
let lastPhase = "";
for (const end = Date.now() + (onXen ? 900_000 : 120_000); Date.now() < end; ) {
  const m = await client.get<XenMigration>(resources.xenMigrations, "web-1-move", "default");
  const phase = m.status?.phase ?? "Pending";
  if (phase !== lastPhase) {
    lastPhase = phase;
    say(
      `xenmigration/web-1-move: ${phase}${m.status?.targetHost ? ` (${m.status.sourceHost} -> ${m.status.targetHost})` : ""}`,
    );
  }
  if (["Succeeded", "Failed", "Aborted"].includes(phase)) {
    const st = m.status ?? {};
    say(
      phase === "Succeeded"
        ? `moved ${st.memoryMiB} MiB: ${((st.bytesTransferred ?? 0) / 2 ** 20).toFixed(0)} MiB sent in ${st.rounds} rounds, downtime ${st.downtimeMs} ms, transfer ${st.totalTimeMs} ms (${onXen ? "real Xen under QEMU" : "sim model"})`
        : `migration ended ${phase}: ${st.failureReason}`,
    );
    break;
  }
  await new Promise((r) => setTimeout(r, 200));
}
console.log(`\n${await cp.kubectlOk(["get", "xenmigrations", "-A", "-o", "wide"])}`);

const kubectl = join(cp.bin.dir, "kubectl");
console.log(`kubexen is up: ${cp.server}

In another terminal:
  export KUBECONFIG=${cp.kubeconfigPath}
  ${kubectl} get xen -A
  ${kubectl} get xd -w

Ctrl-C stops everything.`);
setInterval(() => {}, 1 << 30);
