// A control plane with kubexen's CRDs installed and its system namespace:
// the starting point of the operator's and agents' integration tests.
import { fileURLToPath } from "node:url";
import { ControlPlane, type ControlPlaneOptions } from "./controlplane/controlplane.ts";

export const crdDir = fileURLToPath(new URL("../../crds/generated", import.meta.url));
export const admissionDir = fileURLToPath(new URL("../../crds/generated/admission", import.meta.url));

export async function installKubexen(cp: ControlPlane, namespaces: string[] = []): Promise<void> {
  await cp.kubectlOk(["apply", "--server-side", "-f", crdDir]);
  await cp.kubectlOk([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd",
    "-l",
    "app.kubernetes.io/part-of=kubexen",
  ]);
  // The policies that belong with the CRDs (the finalizer set at creation), as the chart installs them.
  await cp.kubectlOk(["apply", "--server-side", "-f", admissionDir]);
  for (const ns of ["kubexen-system", ...namespaces]) await cp.kubectlOk(["create", "namespace", ns]);
}

export async function startKubexenControlPlane(
  namespaces: string[] = [],
  opts: ControlPlaneOptions = {},
): Promise<ControlPlane> {
  const cp = await ControlPlane.start(opts);
  try {
    await installKubexen(cp, namespaces);
  } catch (err) {
    await cp.stop();
    throw err;
  }
  return cp;
}
