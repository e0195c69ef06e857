// The chart's XenDomain dom0 policy on a real API server, after a helm install:
// a tenant with the edit role in a namespace names only the dom0 paths, bridges
// and bootloader the chart's values allow, with the field and the allowed set
// in the refusal; cluster admins (system:masters, admissionPolicy.adminGroups)
// may name others; the operator's and the agents' writes on such a domain pass.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { KubeConfig } from "@kubernetes/client-node";
import { resources, type XenDomain } from "@kubexen/crds";
import { mintHost } from "@kubexen/node-agent";
import { KubeClient, SdkMetrics } from "@kubexen/sdk";
import { admissionReady } from "../src/cluster.ts";
import { ControlPlane } from "../src/controlplane/controlplane.ts";
import { until } from "../src/wait.ts";

const chart = fileURLToPath(new URL("../../charts/kubexen", import.meta.url));
const NS = "kubexen-system";
const APPS = "apps";
const ROOTS = "(/var/lib/kubexen/images, /var/lib/xen/images)";
const client = (kc: KubeConfig) => new KubeClient(kc, { metrics: new SdkMetrics() });

type Spec = XenDomain["spec"];
const domain = (name: string, spec: Partial<Spec>): XenDomain =>
  ({
    apiVersion: "kubexen.io/v1alpha1",
    kind: "XenDomain",
    metadata: { name, namespace: APPS },
    spec: { memory: "64Mi", ...spec },
  }) as XenDomain;
const okKernel = "/var/lib/xen/images/vmlinuz";

describe("XenDomain dom0 policy", () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let tenant: KubeClient;
  let probeError = "";

  const helmOk = async (args: string[]) => {
    const r = await cp.helm(args);
    assert.equal(r.code, 0, `helm ${args.join(" ")}: ${r.stderr}`);
  };
  const refused = async (c: KubeClient, d: XenDomain, message: string) => {
    await assert.rejects(c.create(resources.xenDomains, d), (err: Error) => {
      assert.ok(err.message.includes(message), `${d.metadata.name}: ${err.message}`);
      assert.doesNotMatch(err.message, /evaluat/i);
      return true;
    });
  };
  /** A user with the edit role in apps (a RoleBinding to Kubernetes' aggregated edit ClusterRole). */
  const editor = async (user: string, groups: string[] = []) => {
    await cp.kubectlOk(["create", "rolebinding", `${user}-edit`, "-n", APPS, "--clusterrole=edit", `--user=${user}`]);
    return client((await cp.userKubeconfig(user, groups)).kubeConfig);
  };

  before(async () => {
    cp = await ControlPlane.start();
    await helmOk(["install", "kubexen", chart, "-n", NS, "--create-namespace"]);
    await cp.kubectlOk(["create", "namespace", APPS]);
    await cp.aggregateClusterRoles();
    await admissionReady(cp, APPS);
    admin = client(cp.kubeConfig());
    tenant = await editor("alice", ["tenants"]);
    // The API server loads a new policy within a few seconds.
    await until(
      "the dom0 policy in force",
      async () =>
        (await tenant
          .request("POST", `/apis/kubexen.io/v1alpha1/namespaces/${APPS}/xendomains`, {
            body: domain("probe", { boot: { kernel: "/etc/shadow" } }),
            query: { dryRun: "All" },
          })
          .then(
            () => false,
            (e: Error) => {
              probeError = e.message;
              return /outside the dom0 paths/.test(e.message);
            },
          )) as boolean,
      30_000,
      200,
    ).catch((e: Error) => {
      throw new Error(`${e.message}: ${probeError}`);
    });
  });
  after(async () => {
    await cp?.stop();
  });

  it("refuses a tenant dom0 paths outside the allowed roots, naming the field and the roots", async () => {
    await refused(
      tenant,
      domain("shadow", { boot: { kernel: "/etc/shadow" } }),
      `spec.boot.kernel: /etc/shadow is outside the dom0 paths this cluster allows ${ROOTS}`,
    );
    await refused(
      tenant,
      domain("ramdisk", { boot: { kernel: okKernel, ramdisk: "/root/initrd" } }),
      `spec.boot.ramdisk: /root/initrd is outside the dom0 paths this cluster allows ${ROOTS}`,
    );
    // Whole names, not a string prefix.
    await refused(
      tenant,
      domain("prefix", { boot: { kernel: "/var/lib/xen/images2/vmlinuz" } }),
      `spec.boot.kernel: /var/lib/xen/images2/vmlinuz is outside the dom0 paths this cluster allows ${ROOTS}`,
    );
    await refused(
      tenant,
      domain("root-itself", { boot: { kernel: "/var/lib/xen/images" } }),
      "spec.boot.kernel: /var/lib/xen/images is outside",
    );
    await refused(
      tenant,
      domain("blockdev", {
        boot: { kernel: okKernel },
        disks: [
          { vdev: "xvda", source: "/var/lib/xen/images/a.img" },
          { vdev: "xvdb", source: "/dev/sda" },
        ],
      } as Partial<Spec>),
      `spec.disks[1].source: /dev/sda is outside the dom0 paths this cluster allows ${ROOTS}`,
    );
    await refused(
      tenant,
      domain("two", {
        boot: { kernel: "/etc/shadow" },
        disks: [{ vdev: "xvda", source: "/etc/passwd" }],
      } as Partial<Spec>),
      `spec.boot.kernel: /etc/shadow, spec.disks[0].source: /etc/passwd are outside the dom0 paths this cluster allows ${ROOTS}`,
    );
  });

  /** Whether the CRD's own schema refuses this domain (an admin's dry run: admins are exempt from the policy). */
  const crdRefuses = (d: XenDomain) =>
    admin
      .request("POST", `/apis/kubexen.io/v1alpha1/namespaces/${APPS}/xendomains`, { body: d, query: { dryRun: "All" } })
      .then(
        () => false,
        () => true,
      );

  it("refuses . and .. names and // even below an allowed root", async () => {
    for (const [name, path] of [
      ["dotdot", "/var/lib/xen/images/../../../etc/shadow"],
      ["dot", "/var/lib/xen/images/./vmlinuz"],
      ["slashes", "/var/lib/xen/images//vmlinuz"],
    ] as const) {
      const d = domain(name, { boot: { kernel: path } });
      // Where the CRD's pattern refuses it first, the refusal is the CRD's.
      if (await crdRefuses(d)) await assert.rejects(tenant.create(resources.xenDomains, d));
      else
        await refused(
          tenant,
          d,
          `spec.boot.kernel: ${path} is outside the dom0 paths this cluster allows ${ROOTS}: a path must name them without . or .. names and without //`,
        );
    }
  });

  it("refuses a bridge outside agent.allowedBridges and a bootloader other than pygrub", async () => {
    await refused(
      tenant,
      domain("mgmt", {
        boot: { kernel: okKernel },
        networks: [{ bridge: "xenbr0" }, { bridge: "mgmt0" }],
      } as Partial<Spec>),
      "spec.networks[1].bridge: mgmt0 is not a bridge this cluster allows (xenbr0)",
    );
    const shell = domain("shell", { type: "pv", boot: { bootloader: "/bin/sh" } } as unknown as Partial<Spec>);
    if (await crdRefuses(shell)) await assert.rejects(tenant.create(resources.xenDomains, shell), /bootloader/);
    else
      await refused(
        tenant,
        shell,
        "spec.boot.bootloader: /bin/sh may not run in dom0; the bootloader this cluster allows is pygrub",
      );
  });

  it("refuses a tenant PCI devices outside agent.allowedPciDevices (none by default)", async () => {
    await refused(
      tenant,
      domain("gpu", {
        boot: { kernel: okKernel },
        pciDevices: ["0000:03:00.0"],
        evictionStrategy: "Restart",
      } as Partial<Spec>),
      "spec.pciDevices[0]: 0000:03:00.0 is not a PCI device this cluster passes through (none)",
    );
  });

  it("lets a tenant create and edit domains inside the allowed roots and bridges", async () => {
    const d = domain("web", {
      type: "pv",
      boot: { kernel: okKernel, ramdisk: "/var/lib/kubexen/images/initrd.img", bootloader: "pygrub" },
      disks: [
        { vdev: "xvda", source: "/var/lib/xen/images/web.img" },
        { vdev: "xvdb", source: "/var/lib/kubexen/images/sub/dir/data.qcow2", format: "qcow2" },
      ],
      networks: [{ bridge: "xenbr0" }],
    } as Partial<Spec>);
    await tenant.create(resources.xenDomains, d);
    await tenant.mergePatch(resources.xenDomains, "web", APPS, { metadata: { labels: { tier: "web" } } });
    await assert.rejects(
      tenant.mergePatch(resources.xenDomains, "web", APPS, { spec: { boot: { kernel: "/boot/vmlinuz" } } }),
      /spec.boot.kernel: \/boot\/vmlinuz is outside the dom0 paths/,
    );
    await tenant.delete(resources.xenDomains, "web", APPS);
  });

  describe("a domain a cluster admin made with exotic dom0 paths", () => {
    const exotic = domain("exotic", {
      boot: { kernel: "/boot/vmlinuz" },
      disks: [{ vdev: "xvda", source: "/dev/sda" }],
      networks: [{ bridge: "storage0" }],
    } as Partial<Spec>);

    before(async () => {
      // The admin (system:masters) is exempt.
      await admin.create(resources.xenDomains, exotic);
    });

    it("stays editable by a tenant, who cannot add exotic values to it", async () => {
      await tenant.mergePatch(resources.xenDomains, "exotic", APPS, { metadata: { labels: { owner: "alice" } } });
      await assert.rejects(
        tenant.jsonPatch(resources.xenDomains, "exotic", APPS, [
          { op: "add", path: "/spec/disks/-", value: { vdev: "xvdb", source: "/dev/sdb" } },
        ]),
        /spec.disks\[1\].source: \/dev\/sdb is outside the dom0 paths/,
      );
      await assert.rejects(
        tenant.jsonPatch(resources.xenDomains, "exotic", APPS, [
          { op: "add", path: "/spec/networks/-", value: { bridge: "mgmt0" } },
        ]),
        /spec.networks\[1\].bridge: mgmt0 is not a bridge this cluster allows/,
      );
    });

    it("leaves the operator's finalizer and status writes and its agent's status writes alone", async () => {
      const op = client((await cp.serviceAccountKubeconfig(NS, "kubexen-operator")).kubeConfig);
      await op.jsonPatch(resources.xenDomains, "exotic", APPS, [
        { op: "add", path: "/metadata/finalizers/-", value: "kubexen.io/test" },
      ]);
      // The operator binds it to h1 through status, as the scheduler does.
      await op.mergePatch(
        resources.xenDomains,
        "exotic",
        APPS,
        { status: { host: "h1", phase: "Starting" } },
        "status",
      );
      const kc = new KubeConfig();
      kc.loadFromString(await mintHost(cp.kubeConfig(), { host: "h1", namespace: NS, expirationSeconds: 3600 }));
      const h1 = client(kc);
      await h1.applyStatus(
        resources.xenDomains,
        {
          apiVersion: "kubexen.io/v1alpha1",
          kind: "XenDomain",
          metadata: { name: "exotic", namespace: APPS },
          status: { host: "h1", phase: "Running" },
        },
        "kubexen-agent-h1",
      );
      assert.equal((await admin.get<XenDomain>(resources.xenDomains, "exotic", APPS)).status?.phase, "Running");
      const fin = (await admin.get<XenDomain>(resources.xenDomains, "exotic", APPS)).metadata.finalizers ?? [];
      await op.jsonPatch(resources.xenDomains, "exotic", APPS, [
        { op: "remove", path: `/metadata/finalizers/${fin.indexOf("kubexen.io/test")}` },
      ]);
    });
  });

  it("exempts admissionPolicy.adminGroups and renders agent.allowedPathRoots, allowedBridges and allowedPciDevices into the policy", async () => {
    await helmOk([
      "upgrade",
      "kubexen",
      chart,
      "-n",
      NS,
      "--reuse-values",
      "--set",
      "admissionPolicy.adminGroups={xen-admins}",
      "--set",
      "agent.allowedPathRoots={/srv/xen}",
      "--set",
      "agent.allowedBridges={br-guests,xenbr1}",
      "--set",
      "agent.allowedPciDevices={0000:03:00.0}",
    ]);
    const ops = await editor("olga", ["xen-admins"]);
    const d = domain("olgas", {
      boot: { kernel: "/boot/vmlinuz" },
      networks: [{ bridge: "storage0" }],
    } as Partial<Spec>);
    await until(
      "the upgraded policy in force",
      async () =>
        (await tenant
          .request("POST", `/apis/kubexen.io/v1alpha1/namespaces/${APPS}/xendomains`, {
            body: domain("probe", { boot: { kernel: "/etc/shadow" } }),
            query: { dryRun: "All" },
          })
          .then(
            () => false,
            (e: Error) => e.message.includes("allows (/srv/xen)"),
          )) as boolean,
      30_000,
      200,
    );
    await ops.create(resources.xenDomains, d);
    await refused(
      tenant,
      domain("old-root", { boot: { kernel: okKernel } }),
      "spec.boot.kernel: /var/lib/xen/images/vmlinuz is outside the dom0 paths this cluster allows (/srv/xen)",
    );
    await refused(
      tenant,
      domain("bridge", { boot: { kernel: "/srv/xen/vmlinuz" }, networks: [{ bridge: "xenbr0" }] } as Partial<Spec>),
      "spec.networks[0].bridge: xenbr0 is not a bridge this cluster allows (br-guests, xenbr1)",
    );
    await tenant.create(
      resources.xenDomains,
      domain("new-root", { boot: { kernel: "/srv/xen/vmlinuz" }, networks: [{ bridge: "xenbr1" }] } as Partial<Spec>),
    );
    await refused(
      tenant,
      domain("gpus", {
        boot: { kernel: "/srv/xen/vmlinuz" },
        pciDevices: ["0000:03:00.0", "0000:04:00.0"],
        evictionStrategy: "Restart",
      } as Partial<Spec>),
      "spec.pciDevices[1]: 0000:04:00.0 is not a PCI device this cluster passes through (0000:03:00.0)",
    );
    await tenant.create(
      resources.xenDomains,
      domain("gpu-ok", {
        boot: { kernel: "/srv/xen/vmlinuz" },
        pciDevices: ["0000:03:00.0"],
        evictionStrategy: "Restart",
      } as Partial<Spec>),
    );
  });
});
