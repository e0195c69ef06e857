// `npm run demo`: kubexen on an embedded control plane. Starts a real
// kube-apiserver and etcd on loopback, installs kubexen's CRDs, and stays up
// printing how to reach it until Ctrl-C.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ControlPlane } from "./controlplane/controlplane.ts";

const crdDir = fileURLToPath(new URL("../../crds/generated", import.meta.url));

const cp = await ControlPlane.start();
let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping the control plane`);
  await cp.stop();
  process.exit(0);
}
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));

if (existsSync(crdDir) && readdirSync(crdDir).some((f) => f.endsWith(".yaml"))) {
  process.stdout.write(await cp.kubectlOk(["apply", "--server-side", "-f", crdDir]));
  await cp.kubectlOk([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd",
    "-l",
    "app.kubernetes.io/part-of=kubexen",
  ]);
}
const kubectl = join(cp.bin.dir, "kubectl");
console.log(`
kubexen demo control plane is up: ${cp.server}

In another terminal:
  export KUBECONFIG=${cp.kubeconfigPath}
  ${kubectl} get crd -l app.kubernetes.io/part-of=kubexen
  ${kubectl} get xen

Ctrl-C stops everything.`);
setInterval(() => {}, 1 << 30);
