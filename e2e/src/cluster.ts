// A control plane with kubexen's CRDs installed and its system namespace:
// the starting point of the operator's and agents' integration tests.
import { fileURLToPath } from "node:url";
import { DOMAIN_FINALIZER } from "@kubexen/crds";
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
  await admissionReady(cp);
}

/**
 * Until the API server has loaded the CRDs' schemas for the policy, it answers creates of
 * XenDomains with 503 ("There can be a delay between when CustomResourceDefinitions are created
 * and when they are available"); a server-side dry run shows when creates pass and get the finalizer.
 */
export async function admissionReady(cp: ControlPlane, namespace = "kubexen-system"): Promise<void> {
  const probe = `apiVersion: kubexen.io/v1alpha1\nkind: XenDomain\nmetadata: {name: admission-probe, namespace: ${namespace}}\nspec: {memory: 64Mi, boot: {kernel: /boot/vmlinuz}}\n`;
  const deadline = Date.now() + 60_000;
  let last = "";
  while (Date.now() < deadline) {
    const r = await cp.kubectl(["create", "--dry-run=server", "-o", "json", "-f", "-"], { input: probe });
    if (r.code === 0 && JSON.parse(r.stdout).metadata?.finalizers?.includes(DOMAIN_FINALIZER)) return;
    last = r.code === 0 ? "created without the finalizer" : r.stderr.trim();
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`the XenDomain admission policy did not take effect within 60 s: ${last}`);
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
