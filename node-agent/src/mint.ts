#!/usr/bin/env node
// kubexen-mint-host: the identity of a Xen host that is not a Kubernetes node.
// Creates the ServiceAccount kubexen-host-<host>, binds it to the agent's
// roles (the chart's ClusterRole and Role kubexen-agent), and writes a
// kubeconfig with a token for it. The chart's admission policy limits that
// identity to <host>.
//   node node-agent/src/mint.ts --host xen-07 --out xen-07.kubeconfig [--namespace kubexen-system]
//        [--kubeconfig admin.kubeconfig] [--days 365]
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { stringify } from "yaml";

export interface MintOptions {
  host: string;
  namespace: string;
  expirationSeconds: number;
}

const HOST_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

const ignoreConflict = (err: unknown) => {
  if ((err as { code?: number }).code !== 409) throw err;
};

/** Creates (or reuses) the host's ServiceAccount and bindings; returns a kubeconfig for it. */
export async function mintHost(admin: KubeConfig, o: MintOptions): Promise<string> {
  if (!HOST_NAME.test(o.host) || o.host.length > 230)
    throw new Error(`--host must be a DNS name of at most 230 characters (the XenHost's name), got "${o.host}"`);
  const sa = `kubexen-host-${o.host}`;
  const core = admin.makeApiClient(CoreV1Api);
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  const labels = { "app.kubernetes.io/name": "kubexen", "kubexen.io/host": o.host.slice(0, 63) };
  await core
    .createNamespacedServiceAccount({ namespace: o.namespace, body: { metadata: { name: sa, labels } } })
    .catch(ignoreConflict);
  const subjects = [{ kind: "ServiceAccount", name: sa, namespace: o.namespace }];
  await rbac
    .createClusterRoleBinding({
      body: {
        metadata: { name: sa, labels },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "kubexen-agent" },
        subjects,
      },
    })
    .catch(ignoreConflict);
  await rbac
    .createNamespacedRoleBinding({
      namespace: o.namespace,
      body: {
        metadata: { name: sa, labels },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "kubexen-agent" },
        subjects,
      },
    })
    .catch(ignoreConflict);
  const tr = await core.createNamespacedServiceAccountToken({
    name: sa,
    namespace: o.namespace,
    body: { spec: { expirationSeconds: o.expirationSeconds, audiences: [] } },
  });
  const token = tr.status?.token;
  if (!token) throw new Error(`the API server issued no token for ${o.namespace}/${sa}`);
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error("the admin kubeconfig has no current cluster");
  const caData = cluster.caData ?? (cluster.caFile ? readFileSync(cluster.caFile).toString("base64") : undefined);
  const user = `system:serviceaccount:${o.namespace}:${sa}`;
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: "kubexen",
        cluster: { server: cluster.server, ...(caData ? { "certificate-authority-data": caData } : {}) },
      },
    ],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: "kubexen", context: { cluster: "kubexen", user } }],
    "current-context": "kubexen",
  });
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      host: { type: "string" },
      namespace: { type: "string", default: "kubexen-system" },
      kubeconfig: { type: "string" },
      out: { type: "string" },
      days: { type: "string", default: "365" },
    },
  });
  const days = Number(values.days);
  if (!values.host || !values.out || !Number.isInteger(days) || days < 1) {
    console.error(
      "usage: kubexen-mint-host --host <xen host> --out <kubeconfig file> [--namespace ns] [--kubeconfig admin] [--days N]",
    );
    process.exit(2);
  }
  const admin = new KubeConfig();
  if (values.kubeconfig) admin.loadFromFile(values.kubeconfig);
  else admin.loadFromDefault();
  try {
    const yaml = await mintHost(admin, {
      host: values.host,
      namespace: values.namespace ?? "kubexen-system",
      expirationSeconds: days * 86400,
    });
    writeFileSync(values.out, yaml, { mode: 0o600 });
    console.log(
      `wrote ${values.out}: ServiceAccount ${values.namespace}/kubexen-host-${values.host}, token valid ${days} days`,
    );
  } catch (err) {
    console.error(`kubexen-mint-host: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
