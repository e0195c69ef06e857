// CRDs follow the operator: at start it server-side applies the CRDs of its
// release over an older release's, keeps the objects, and leaves a newer
// release's alone. The decision is pure; the apply runs on a real API server.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { resources, type XenDomain } from "@kubexen/crds";
import { type ControlPlane, startKubexenControlPlane } from "@kubexen/e2e";
import { createLogger, KubeClient, type KubeObject } from "@kubexen/sdk";
import {
  CRD_RELEASE_ANNOTATION,
  compareReleases,
  customResourceDefinitions,
  planCrdUpgrade,
  upgradeCrds,
} from "../src/index.ts";

const log = createLogger("crd-upgrade-test", process.env.LOG_LEVEL ?? "warn");
const ours = { release: "0.2.0", versions: ["v1alpha1"] };

describe("compareReleases", () => {
  it("orders by number, not by text, with pre-releases first", () => {
    const sorted = ["0.1.0", "0.1.10", "0.10.0", "0.2.0-rc.1", "0.2.0", "1.0.0", "0.9", "v0.3.1"].sort(compareReleases);
    assert.deepEqual(sorted, ["0.1.0", "0.1.10", "0.2.0-rc.1", "0.2.0", "v0.3.1", "0.9", "0.10.0", "1.0.0"]);
    assert.equal(compareReleases("1.2.0", "1.2"), 0);
    assert.equal(compareReleases("1.2.0-rc.1", "1.2.0-rc.2"), -1);
  });
});

describe("planCrdUpgrade", () => {
  it("applies over the chart's install, an older release and the same release", () => {
    for (const release of [undefined, "0.1.0", "0.2.0", "0.2.0-rc.1"]) {
      const d = planCrdUpgrade({ exists: true, release, storedVersions: ["v1alpha1"] }, ours);
      assert.equal(d.apply, true, String(release));
    }
  });
  it("leaves a newer release's CRD alone, without an error", () => {
    assert.deepEqual(planCrdUpgrade({ exists: true, release: "0.10.0" }, ours), {
      apply: false,
      error: false,
      reason: "the cluster has release 0.10.0's, newer than ours",
    });
  });
  it("refuses to drop a version objects are stored in, and a CRD that is not installed", () => {
    const d = planCrdUpgrade({ exists: true, release: "0.1.0", storedVersions: ["v1alpha0", "v1alpha1"] }, ours);
    assert.equal(d.apply, false);
    assert.equal(!d.apply && d.error, true);
    assert.match(d.reason, /stored as v1alpha0/);
    const missing = planCrdUpgrade({ exists: false }, ours);
    assert.equal(!missing.apply && missing.error, true);
  });
});

type Crd = KubeObject & {
  spec: { versions: Array<{ schema: { openAPIV3Schema: { properties: Record<string, { properties: object }> } } }> };
};
const crdName = "xendomains.kubexen.io";
const specProps = (crd: Crd) =>
  crd.spec.versions[0]?.schema.openAPIV3Schema.properties.spec?.properties as Record<string, unknown>;

describe("upgradeCrds on a real API server", () => {
  let cp: ControlPlane;
  let client: KubeClient;

  before(async () => {
    cp = await startKubexenControlPlane(["crd-upgrade"]);
    client = new KubeClient(cp.kubeConfig());
  });
  after(async () => cp?.stop());

  /** Makes the stored CRD look like an older (or newer) release's: without spec.priority. */
  async function rewind(release: string): Promise<void> {
    const crd = await client.get<Crd>(customResourceDefinitions, crdName);
    delete specProps(crd).priority;
    crd.metadata.annotations = { ...crd.metadata.annotations, [CRD_RELEASE_ANNOTATION]: release };
    await client.replace(customResourceDefinitions, crd);
  }

  it("upgrades an older release's schema and keeps the objects", async () => {
    const created = await client.create<XenDomain>(resources.xenDomains, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenDomain",
      metadata: { name: "kept", namespace: "crd-upgrade" },
      spec: { memory: "64Mi", boot: { kernel: "/var/lib/kubexen/images/vmlinuz" }, priority: 5 },
    } as XenDomain);
    await rewind("0.0.1");
    assert.equal(specProps(await client.get<Crd>(customResourceDefinitions, crdName)).priority, undefined);

    await upgradeCrds(client, "0.1.0", log);

    const crd = await client.get<Crd>(customResourceDefinitions, crdName);
    assert.ok(specProps(crd).priority, "the field is back in the schema");
    assert.equal(crd.metadata.annotations?.[CRD_RELEASE_ANNOTATION], "0.1.0");
    const kept = await client.get<XenDomain>(resources.xenDomains, "kept", "crd-upgrade");
    assert.equal(kept.metadata.uid, created.metadata.uid);
    assert.equal(kept.spec.priority, 5);
  });

  it("leaves a newer release's CRD as it is", async () => {
    await rewind("9.0.0");
    await upgradeCrds(client, "0.1.0", log);
    const crd = await client.get<Crd>(customResourceDefinitions, crdName);
    assert.equal(specProps(crd).priority, undefined, "an older operator did not undo the newer schema");
    assert.equal(crd.metadata.annotations?.[CRD_RELEASE_ANNOTATION], "9.0.0");
    await upgradeCrds(client, "9.0.1", log);
    assert.ok(specProps(await client.get<Crd>(customResourceDefinitions, crdName)).priority);
  });
});
