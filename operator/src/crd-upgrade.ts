// CRDs follow the operator. Helm installs a chart's crds/ once and never
// upgrades them, so a new release's schema would otherwise never reach the
// cluster. The operator server-side applies the CRDs it was built with at
// start, unless the cluster already holds a newer release's (an old replica
// in a rolling upgrade must not undo the new one's), and never drops a
// version objects are still stored in.
import { allCrds } from "@kubexen/crds";
import type { KubeClient, KubeObject, Logger, Resource } from "@kubexen/sdk";

export const CRD_RELEASE_ANNOTATION = "kubexen.io/api-release";
export const CRD_FIELD_MANAGER = "kubexen-operator";

export const customResourceDefinitions: Resource = {
  group: "apiextensions.k8s.io",
  version: "v1",
  plural: "customresourcedefinitions",
  kind: "CustomResourceDefinition",
  namespaced: false,
};

/** What the cluster holds of one CRD. */
export interface StoredCrd {
  exists: boolean;
  /** The release that last applied it (absent: installed by Helm from the chart, or by hand). */
  release?: string;
  /** Versions objects are stored in (status.storedVersions). */
  storedVersions?: string[];
}

export type CrdDecision = { apply: true; reason: string } | { apply: false; error: boolean; reason: string };

/** Orders release strings such as 0.1.0 and 0.10.2-rc.1 by their numbers; a pre-release sorts before its release. */
export function compareReleases(a: string, b: string): number {
  const parse = (v: string) => {
    const [core = "", pre] = v.replace(/^v/, "").split("-", 2);
    return { nums: core.split(".").map((x) => Number.parseInt(x, 10) || 0), pre };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < Math.max(x.nums.length, y.nums.length); i++) {
    const d = (x.nums[i] ?? 0) - (y.nums[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  if (x.pre === y.pre) return 0;
  if (x.pre === undefined) return 1;
  if (y.pre === undefined) return -1;
  return x.pre < y.pre ? -1 : 1;
}

/** Whether to apply our CRD over what the cluster holds. */
export function planCrdUpgrade(stored: StoredCrd, ours: { release: string; versions: string[] }): CrdDecision {
  if (!stored.exists)
    return { apply: false, error: true, reason: "not installed: install the chart (or crds/generated) first" };
  if (stored.release && compareReleases(stored.release, ours.release) > 0)
    return { apply: false, error: false, reason: `the cluster has release ${stored.release}'s, newer than ours` };
  const dropped = (stored.storedVersions ?? []).filter((v) => !ours.versions.includes(v));
  if (dropped.length > 0)
    return {
      apply: false,
      error: true,
      reason: `objects are stored as ${dropped.join(", ")}, which release ${ours.release} does not serve: migrate them first`,
    };
  return {
    apply: true,
    reason:
      stored.release === ours.release
        ? "same release: re-applied"
        : `upgrade from ${stored.release ?? "the chart's install"}`,
  };
}

type Crd = KubeObject & {
  spec?: { versions?: Array<{ name: string }> };
  status?: { storedVersions?: string[] };
};

/** Applies every kubexen CRD this release defines, where planCrdUpgrade allows. Throws when one cannot be. */
export async function upgradeCrds(client: KubeClient, release: string, log: Logger): Promise<void> {
  const errors: string[] = [];
  for (const wanted of allCrds() as Crd[]) {
    const name = wanted.metadata.name ?? "";
    const cur = await client.getOrUndefined<Crd>(customResourceDefinitions, name);
    const decision = planCrdUpgrade(
      {
        exists: !!cur,
        release: cur?.metadata.annotations?.[CRD_RELEASE_ANNOTATION],
        storedVersions: cur?.status?.storedVersions,
      },
      { release, versions: (wanted.spec?.versions ?? []).map((v) => v.name) },
    );
    if (!decision.apply) {
      if (decision.error) errors.push(`${name}: ${decision.reason}`);
      else log.info({ crd: name, reason: decision.reason }, "CRD left as it is");
      continue;
    }
    const body = {
      ...wanted,
      metadata: { ...wanted.metadata, annotations: { [CRD_RELEASE_ANNOTATION]: release } },
    };
    await client.apply(customResourceDefinitions, body, { fieldManager: CRD_FIELD_MANAGER, force: true });
    log.info({ crd: name, release, reason: decision.reason }, "CRD applied");
  }
  if (errors.length > 0) throw new Error(`cannot upgrade the CRDs: ${errors.join("; ")}`);
}
