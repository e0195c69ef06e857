// kubexen's API on a real API server: the generated CRDs install, every
// example applies, and bad manifests are rejected with messages that name
// the field, with nothing stored.
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { type ControlPlane, startKubexenControlPlane } from "../src/index.ts";

const examplesDir = fileURLToPath(new URL("../../examples", import.meta.url));

const domain = (name: string, spec: string) => `apiVersion: kubexen.io/v1alpha1
kind: XenDomain
metadata: {name: ${name}, namespace: api-test}
spec:
${spec}`;
const pvh = "  type: pvh\n  memory: 512Mi\n  boot: {kernel: /boot/vmlinuz}\n";

interface BadCase {
  what: string;
  kind: string;
  name: string;
  manifest: string;
  /** Must appear in the API server's answer: the field it names. */
  field: RegExp;
}

const bad: BadCase[] = [
  { what: "unknown guest type", field: /spec\.type: Unsupported value: "kvm"/, spec: "  type: kvm\n  memory: 512Mi\n" },
  {
    what: "zero vCPUs",
    field: /spec\.vcpus: Invalid value: 0: spec\.vcpus in body should be greater than or equal to 1/,
    spec: `${pvh}  vcpus: 0\n`,
  },
  { what: "negative vCPUs", field: /spec\.vcpus: Invalid value: -2/, spec: `${pvh}  vcpus: -2\n` },
  {
    what: "vCPUs as a word",
    field: /spec\.vcpus: Invalid value: "string": spec\.vcpus in body must be of type integer/,
    spec: `${pvh}  vcpus: two\n`,
  },
  {
    what: "zero memory",
    field: /spec\.memory: Invalid value: .*must be at least 16Mi/,
    spec: "  boot: {kernel: /boot/vmlinuz}\n  memory: 0\n",
  },
  {
    what: "negative memory",
    field: /spec\.memory: Invalid value: "-1Gi": spec\.memory in body should match/,
    spec: "  boot: {kernel: /boot/vmlinuz}\n  memory: -1Gi\n",
  },
  {
    what: "memory that is not a quantity",
    field: /spec\.memory: Invalid value: "lots"/,
    spec: "  boot: {kernel: /boot/vmlinuz}\n  memory: lots\n",
  },
  {
    what: "memory in bare bytes below the minimum",
    field: /spec\.memory: Invalid value: .*must be at least 16Mi, got 512 \(a bare number is bytes/,
    spec: "  boot: {kernel: /boot/vmlinuz}\n  memory: 512\n",
  },
  {
    what: "memory not a whole MiB",
    field: /spec\.memory: Invalid value: .*must be a whole number of MiB, got 100.5Mi/,
    spec: "  boot: {kernel: /boot/vmlinuz}\n  memory: 100.5Mi\n",
  },
  {
    what: "memory above maxMemory",
    field: /spec\.memory: Invalid value: .*memory \(4Gi\) must not exceed maxMemory \(2Gi\)/,
    spec: "  boot: {kernel: /boot/vmlinuz}\n  memory: 4Gi\n  maxMemory: 2Gi\n",
  },
  {
    what: "maxMemory below the minimum",
    field: /spec\.maxMemory: Invalid value: .*must be at least 16Mi/,
    spec: "  boot: {kernel: /boot/vmlinuz}\n  memory: 16Mi\n  maxMemory: 1Mi\n",
  },
  {
    what: "vcpus above maxVcpus",
    field: /spec\.vcpus: Invalid value: .*vcpus must not exceed maxVcpus/,
    spec: `${pvh}  vcpus: 4\n  maxVcpus: 2\n`,
  },
  {
    what: "an hvm guest with 129 vCPUs",
    field: /spec\.vcpus: Invalid value: .*at most 128 vCPUs/,
    spec: "  type: hvm\n  memory: 1Gi\n  vcpus: 129\n",
  },
  {
    what: "a pvh guest with maxVcpus 200",
    field: /spec\.vcpus: Invalid value: .*at most 128 vCPUs/,
    spec: `${pvh}  maxVcpus: 200\n`,
  },
  {
    what: "a pv guest with 1000 vCPUs",
    field: /spec\.vcpus: Invalid value: 1000: spec\.vcpus in body should be less than or equal to 512/,
    spec: "  type: pv\n  memory: 1Gi\n  vcpus: 1000\n  boot: {bootloader: pygrub}\n",
  },
  {
    what: "a pv guest without kernel or bootloader",
    field: /spec\.boot: Required value: a pv guest needs boot\.kernel or boot\.bootloader/,
    spec: "  type: pv\n  memory: 1Gi\n",
  },
  {
    what: "a pvh guest without kernel",
    field: /spec\.boot: Required value: a pvh guest needs boot\.kernel/,
    spec: "  type: pvh\n  memory: 1Gi\n  boot: {cmdline: console=hvc0}\n",
  },
  {
    what: "a relative kernel path",
    field: /spec\.boot\.kernel: Invalid value: "vmlinuz": spec\.boot\.kernel in body should match/,
    spec: "  memory: 1Gi\n  boot: {kernel: vmlinuz}\n",
  },
  {
    what: "UEFI firmware on a pvh guest",
    field: /spec\.boot\.firmware: Forbidden: boot\.firmware applies to hvm guests only/,
    spec: "  memory: 1Gi\n  boot: {kernel: /boot/vmlinuz, firmware: uefi}\n",
  },
  { what: "an unknown spec field", field: /unknown field "spec\.colour"/, spec: `${pvh}  colour: blue\n` },
  {
    what: "a misspelt boot field",
    field: /unknown field "spec\.boot\.kernal"/,
    spec: "  memory: 1Gi\n  boot: {kernel: /boot/vmlinuz, kernal: /boot/x}\n",
  },
  {
    what: "a MAC with non-hex digits",
    field: /spec\.networks\[0\]\.mac: Invalid value: "00:16:3e:zz:00:01"/,
    spec: `${pvh}  networks: [{bridge: xenbr0, mac: "00:16:3e:zz:00:01"}]\n`,
  },
  {
    what: "a multicast MAC",
    field: /spec\.networks\[0\]\.mac: Invalid value: "01:00:5e:00:00:01"/,
    spec: `${pvh}  networks: [{bridge: xenbr0, mac: "01:00:5e:00:00:01"}]\n`,
  },
  {
    what: "a bridge name longer than an interface name",
    field: /spec\.networks\[0\]\.bridge: Invalid value: "averyveryverylongbridge"/,
    spec: `${pvh}  networks: [{bridge: averyveryverylongbridge}]\n`,
  },
  {
    what: "two disks with the same vdev",
    field: /spec\.disks\[1\]: Duplicate value/,
    spec: `${pvh}  disks: [{vdev: xvda, source: /dev/a}, {vdev: xvda, source: /dev/b}]\n`,
  },
  {
    what: "a vdev Xen does not know",
    field: /spec\.disks\[0\]\.vdev: Invalid value: "vda"/,
    spec: `${pvh}  disks: [{vdev: vda, source: /dev/a}]\n`,
  },
  {
    what: "an unsupported disk format",
    field: /spec\.disks\[0\]\.format: Unsupported value: "vmdk"/,
    spec: `${pvh}  disks: [{vdev: xvda, source: /dev/a, format: vmdk}]\n`,
  },
  {
    what: "a disk without a source",
    field: /spec\.disks\[0\]\.source: Required value/,
    spec: `${pvh}  disks: [{vdev: xvda}]\n`,
  },
  {
    what: "a PCI address without domain",
    field: /spec\.pciDevices\[0\]: Invalid value: "03:00.0"/,
    spec: `${pvh}  pciDevices: ["03:00.0"]\n`,
  },
  {
    what: "PCI passthrough with evictionStrategy LiveMigrate",
    field: /spec\.evictionStrategy: Forbidden: a domain with pciDevices cannot live-migrate/,
    spec: `${pvh}  pciDevices: ["0000:03:00.0"]\n  evictionStrategy: LiveMigrate\n`,
  },
  {
    what: "an unknown runStrategy",
    field: /spec\.runStrategy: Unsupported value: "Sometimes"/,
    spec: `${pvh}  runStrategy: Sometimes\n`,
  },
  {
    what: "an unknown powerState",
    field: /spec\.powerState: Unsupported value: "Sleeping"/,
    spec: `${pvh}  powerState: Sleeping\n`,
  },
  { what: "a zero credit2 weight", field: /spec\.cpu\.weight: Invalid value: 0/, spec: `${pvh}  cpu: {weight: 0}\n` },
  {
    what: "a CPU cap above 100% per vCPU",
    field: /spec\.cpu\.cap: Invalid value: .*cpu\.cap must not exceed 100/,
    spec: `${pvh}  vcpus: 2\n  cpu: {cap: 300}\n`,
  },
  {
    what: "a malformed CPU pinning",
    field: /spec\.cpu\.pinning: Invalid value: "0-"/,
    spec: `${pvh}  cpu: {pinning: "0-"}\n`,
  },
  {
    what: "a negative grace period",
    field: /spec\.terminationGracePeriodSeconds: Invalid value: -1/,
    spec: `${pvh}  terminationGracePeriodSeconds: -1\n`,
  },
  { what: "no memory at all", field: /spec\.memory: Required value/, spec: "  boot: {kernel: /boot/vmlinuz}\n" },
  { what: "no spec", field: /spec: Required value/, spec: "" },
].map((c, i) => {
  const { spec, ...rest } = c as BadCase & { spec: string };
  const name = `bad-${i}`;
  return {
    ...rest,
    kind: "xendomain",
    name,
    manifest: spec ? domain(name, spec) : domain(name, "").replace(/\nspec:\n$/, "\n"),
  };
});

bad.push(
  {
    what: "a name with capitals and underscores",
    kind: "xendomain",
    name: "Web_1",
    field: /metadata\.name: Invalid value: "Web_1"/,
    manifest: domain("Web_1", pvh),
  },
  {
    what: "a migration without a domain",
    kind: "xenmigration",
    name: "mig-bad-1",
    field: /spec\.domain: Required value/,
    manifest:
      "apiVersion: kubexen.io/v1alpha1\nkind: XenMigration\nmetadata: {name: mig-bad-1, namespace: api-test}\nspec: {targetHost: xen-02}\n",
  },
  {
    what: "a migration with an unknown reason",
    kind: "xenmigration",
    name: "mig-bad-2",
    field: /spec\.reason: Unsupported value: "Whim"/,
    manifest:
      "apiVersion: kubexen.io/v1alpha1\nkind: XenMigration\nmetadata: {name: mig-bad-2, namespace: api-test}\nspec: {domain: web-1, reason: Whim}\n",
  },
  {
    what: "a migration to a host name that cannot exist",
    kind: "xenmigration",
    name: "mig-bad-3",
    field: /spec\.targetHost: Invalid value: "Xen 02"/,
    manifest:
      "apiVersion: kubexen.io/v1alpha1\nkind: XenMigration\nmetadata: {name: mig-bad-3, namespace: api-test}\nspec: {domain: web-1, targetHost: Xen 02}\n",
  },
  {
    what: "a maintenance with an empty host",
    kind: "xenmaintenance",
    name: "maint-bad-1",
    field: /spec\.host: Invalid value: ""/,
    manifest:
      "apiVersion: kubexen.io/v1alpha1\nkind: XenMaintenance\nmetadata: {name: maint-bad-1}\nspec: {host: ''}\n",
  },
  {
    what: "a balancer not named default",
    kind: "xenbalancer",
    name: "other",
    field: /metadata\.name: there is one XenBalancer per cluster and it must be named default/,
    manifest: "apiVersion: kubexen.io/v1alpha1\nkind: XenBalancer\nmetadata: {name: other}\nspec: {mode: Auto}\n",
  },
  {
    what: "a balancer threshold above 1",
    kind: "xenbalancer",
    name: "default",
    field: /spec\.threshold: Invalid value: 2/,
    manifest: "apiVersion: kubexen.io/v1alpha1\nkind: XenBalancer\nmetadata: {name: default}\nspec: {threshold: 2}\n",
  },
  {
    what: "balancer weights that are both zero",
    kind: "xenbalancer",
    name: "default",
    field: /spec\.weights: Invalid value: .*at least one of weights\.cpu and weights\.memory must be positive/,
    manifest:
      "apiVersion: kubexen.io/v1alpha1\nkind: XenBalancer\nmetadata: {name: default}\nspec: {weights: {cpu: 0, memory: 0}}\n",
  },
  {
    what: "a balancer in an unknown mode",
    kind: "xenbalancer",
    name: "default",
    field: /spec\.mode: Unsupported value: "Aggressive"/,
    manifest:
      "apiVersion: kubexen.io/v1alpha1\nkind: XenBalancer\nmetadata: {name: default}\nspec: {mode: Aggressive}\n",
  },
  {
    what: "a migration policy allowing no migrations",
    kind: "xenmigrationpolicy",
    name: "default",
    field: /spec\.parallelMigrationsPerCluster: Invalid value: 0/,
    manifest:
      "apiVersion: kubexen.io/v1alpha1\nkind: XenMigrationPolicy\nmetadata: {name: default}\nspec: {parallelMigrationsPerCluster: 0}\n",
  },
  {
    what: "a host cordoned with a string",
    kind: "xenhost",
    name: "xen-bad",
    field: /spec\.unschedulable: Invalid value: "string": spec\.unschedulable in body must be of type boolean/,
    manifest:
      "apiVersion: kubexen.io/v1alpha1\nkind: XenHost\nmetadata: {name: xen-bad}\nspec: {unschedulable: 'yes'}\n",
  },
);

describe("kubexen CRDs on a real API server", () => {
  let cp: ControlPlane;
  before(async () => {
    cp = await startKubexenControlPlane(["api-test"]);
  });
  after(async () => {
    await cp?.stop();
  });

  it("installs every kind, in the category xen", async () => {
    const out = await cp.kubectlOk(["api-resources", "--categories=xen", "-o", "name"]);
    assert.deepEqual(out.trim().split("\n").sort(), [
      "xenbalancers.kubexen.io",
      "xendomains.kubexen.io",
      "xenhosts.kubexen.io",
      "xenmaintenances.kubexen.io",
      "xenmigrationpolicies.kubexen.io",
      "xenmigrations.kubexen.io",
    ]);
  });

  it("applies every example file and the examples kustomization", async () => {
    const files = readdirSync(examplesDir).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml");
    assert.ok(files.length >= 7, `examples: ${files}`);
    for (const f of files) await cp.kubectlOk(["apply", "-n", "api-test", "-f", `${examplesDir}/${f}`]);
    await cp.kubectlOk(["apply", "-n", "api-test", "-k", examplesDir]);
    // GitOps sees no drift: the live objects are what the manifests say (exit 0: no differences).
    const diff = await cp.kubectl(["diff", "-n", "api-test", "-k", examplesDir]);
    assert.equal(diff.code, 0, `kubectl diff found drift:\n${diff.stdout}${diff.stderr}`);
  });

  it("fills in defaults the user left out", async () => {
    const xd = JSON.parse(await cp.kubectlOk(["get", "xd", "legacy-db", "-n", "api-test", "-o", "json"]));
    assert.equal(xd.spec.powerState, "Running");
    assert.equal(xd.spec.priority, 0);
    assert.deepEqual(xd.spec.disks[0], {
      vdev: "xvda",
      source: "/dev/vg0/legacy-db",
      format: "raw",
      access: "rw",
      devtype: "disk",
    });
    const bal = JSON.parse(await cp.kubectlOk(["get", "xbal", "default", "-o", "json"]));
    assert.equal(bal.spec.cooldownSeconds, 1800);
  });

  for (const c of bad) {
    it(`rejects ${c.what}, naming the field, and stores nothing`, async () => {
      const r = await cp.kubectl(["create", "-f", "-"], { input: c.manifest });
      assert.notEqual(r.code, 0, `accepted:\n${c.manifest}`);
      assert.match(r.stderr, c.field);
      const ns = c.kind === "xendomain" || c.kind === "xenmigration" ? ["-n", "api-test"] : [];
      const get = await cp.kubectl(["get", c.kind, c.name, ...ns, "--ignore-not-found", "-o", "name"]);
      if (c.name !== "default") assert.equal(get.stdout.trim(), "", `${c.kind}/${c.name} was stored`);
    });
  }

  it("keeps the balancer and policy singletons as the examples set them", async () => {
    const bal = JSON.parse(await cp.kubectlOk(["get", "xbal", "default", "-o", "json"]));
    assert.equal(bal.spec.mode, "Auto");
    const pol = JSON.parse(await cp.kubectlOk(["get", "xmp", "default", "-o", "json"]));
    assert.equal(pol.spec.parallelMigrationsPerCluster, 5);
  });

  it("refuses to change a domain's type after creation", async () => {
    const r = await cp.kubectl([
      "patch",
      "xd",
      "web-1",
      "-n",
      "api-test",
      "--type=merge",
      "-p",
      '{"spec":{"type":"hvm"}}',
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /spec\.type: Forbidden: type is immutable/);
    const ok = await cp.kubectl([
      "patch",
      "xd",
      "web-1",
      "-n",
      "api-test",
      "--type=merge",
      "-p",
      '{"spec":{"vcpus":3}}',
    ]);
    assert.equal(ok.code, 0, ok.stderr);
  });

  it("refuses any change to a migration's spec", async () => {
    const r = await cp.kubectl([
      "patch",
      "xmig",
      "web-1-to-xen-02",
      "-n",
      "api-test",
      "--type=merge",
      "-p",
      '{"spec":{"targetHost":"xen-03"}}',
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /spec: Forbidden: spec is immutable/);
  });

  it("refuses to move a maintenance to another host", async () => {
    const r = await cp.kubectl(["patch", "xmaint", "xen-01", "--type=merge", "-p", '{"spec":{"host":"xen-02"}}']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /spec\.host: Forbidden: host is immutable/);
  });

  it("stores status only through the status subresource", async () => {
    const api = cp.kubeConfig().makeApiClient(CustomObjectsApi);
    const ref = {
      group: "kubexen.io",
      version: "v1alpha1",
      namespace: "api-test",
      plural: "xendomains",
      name: "web-1",
    };
    // A status in a main-resource update is ignored...
    await cp.kubectlOk([
      "patch",
      "xd",
      "web-1",
      "-n",
      "api-test",
      "--type=merge",
      "-p",
      '{"status":{"host":"xen-09"}}',
    ]);
    let xd = (await api.getNamespacedCustomObject(ref)) as { status?: { host?: string } };
    assert.equal(xd.status?.host, undefined);
    // ...and taken through /status.
    await cp.kubectlOk([
      "patch",
      "xd",
      "web-1",
      "-n",
      "api-test",
      "--subresource=status",
      "--type=merge",
      "-p",
      '{"status":{"host":"xen-02","phase":"Running"}}',
    ]);
    xd = (await api.getNamespacedCustomObject(ref)) as { status?: { host?: string } };
    assert.equal(xd.status?.host, "xen-02");
    // Status is validated too.
    const r = await cp.kubectl([
      "patch",
      "xd",
      "web-1",
      "-n",
      "api-test",
      "--subresource=status",
      "--type=merge",
      "-p",
      '{"status":{"phase":"Sleepy"}}',
    ]);
    assert.match(r.stderr, /status\.phase: Unsupported value: "Sleepy"/);
  });

  it("shows printer columns and filters by selectable fields", async () => {
    const table = await cp.kubectlOk(["get", "xd", "-n", "api-test"]);
    assert.match(table.split("\n")[0] ?? "", /^NAME\s+PHASE\s+HOST\s+VCPUS\s+MEMORY\s+READY\s+AGE/);
    assert.match(table, /web-1\s+Running\s+xen-02\s+3\s+1Gi/);
    const onHost = await cp.kubectlOk([
      "get",
      "xd",
      "-n",
      "api-test",
      "--field-selector=status.host=xen-02",
      "-o",
      "name",
    ]);
    assert.equal(onHost.trim(), "xendomain.kubexen.io/web-1");
    const pv = await cp.kubectlOk(["get", "xd", "-n", "api-test", "--field-selector=spec.type=pv", "-o", "name"]);
    assert.equal(pv.trim(), "xendomain.kubexen.io/legacy-db");
    const hostTable = await cp.kubectlOk(["get", "xmaint"]);
    assert.match(
      hostTable.split("\n")[0] ?? "",
      /^NAME\s+HOST\s+PHASE\s+REMAINING\s+MIGRATED\s+RESTARTED\s+BLOCKED\s+AGE/,
    );
  });

  it("sets the domain finalizer at creation, which a server-side re-apply keeps and a user's finalizer joins", async () => {
    await cp.kubectlOk(["create", "namespace", "api-fin"]);
    const manifest = (memory: string, finalizers = "") =>
      `apiVersion: kubexen.io/v1alpha1\nkind: XenDomain\nmetadata: {name: gitops, namespace: api-fin${finalizers}}\nspec: {memory: ${memory}, boot: {kernel: /boot/vmlinuz}}\n`;
    const apply = (m: string) =>
      cp.kubectlOk(["apply", "--server-side", "--field-manager=argocd-controller", "-f", "-"], { input: m });
    const get = async () =>
      JSON.parse(await cp.kubectlOk(["get", "xd", "gitops", "-n", "api-fin", "-o", "json", "--show-managed-fields"]));
    await apply(manifest("1Gi"));
    let xd = await get();
    // No operator runs here: the API server set it.
    assert.deepEqual(xd.metadata.finalizers, ["kubexen.io/domain"]);
    const owned = JSON.stringify(
      xd.metadata.managedFields.find((m: { manager: string }) => m.manager === "argocd-controller"),
    );
    assert.doesNotMatch(owned, /finalizers/, "the applier does not own the finalizer");
    await apply(manifest("2Gi"));
    xd = await get();
    assert.equal(xd.spec.memory, "2Gi");
    assert.deepEqual(xd.metadata.finalizers, ["kubexen.io/domain"], "kept by the next apply");
    // A domain created with a finalizer of its own gets ours beside it, once.
    await cp.kubectlOk(["apply", "-f", "-"], {
      input: manifest("1Gi", ", finalizers: [example.com/backup]").replace("gitops", "own"),
    });
    const own = JSON.parse(await cp.kubectlOk(["get", "xd", "own", "-n", "api-fin", "-o", "json"]));
    assert.deepEqual(own.metadata.finalizers, ["example.com/backup", "kubexen.io/domain"]);
    // Cleanup without an operator: drop the finalizers, then delete.
    for (const n of ["gitops", "own"]) {
      await cp.kubectlOk(["patch", "xd", n, "-n", "api-fin", "--type=merge", "-p", '{"metadata":{"finalizers":null}}']);
      await cp.kubectlOk(["delete", "xd", n, "-n", "api-fin"]);
    }
  });

  it("holds only the valid objects after all the bad ones", async () => {
    const names = (await cp.kubectlOk(["get", "xd", "-n", "api-test", "-o", "name"])).trim().split("\n").sort();
    assert.deepEqual(names, [
      "xendomain.kubexen.io/legacy-db",
      "xendomain.kubexen.io/web-1",
      "xendomain.kubexen.io/winsrv-1",
    ]);
  });
});
