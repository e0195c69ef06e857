import { connect, createServer, type Server, type Socket } from "node:net";
// A real control plane with a small test CRD (Widget) for the SDK's
// integration tests. The SDK is generic, so its tests use their own kind.
import { KubeConfig } from "@kubernetes/client-node";
import { ControlPlane } from "@kubexen/e2e";

export { until } from "@kubexen/e2e";

import { createLogger, KubeClient, type KubeObject, type Resource, SdkMetrics } from "../src/index.ts";

export const widgets: Resource = {
  group: "sdk.kubexen.io",
  version: "v1",
  plural: "widgets",
  kind: "Widget",
  namespaced: true,
};

export interface Widget extends KubeObject {
  spec: { size: number; flag?: string; counter?: number };
  status?: {
    a?: string;
    b?: string;
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
  };
}

const crd = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: widgets.sdk.kubexen.io }
spec:
  group: sdk.kubexen.io
  scope: Namespaced
  names: { plural: widgets, singular: widget, kind: Widget }
  versions:
    - name: v1
      served: true
      storage: true
      subresources: { status: {} }
      selectableFields: [{ jsonPath: .spec.flag }]
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: { type: integer }
                flag: { type: string }
                counter: { type: integer }
            status:
              type: object
              properties:
                a: { type: string }
                b: { type: string }
                conditions:
                  type: array
                  x-kubernetes-list-type: map
                  x-kubernetes-list-map-keys: [type]
                  items:
                    type: object
                    required: [type, status]
                    properties:
                      type: { type: string }
                      status: { type: string }
                      reason: { type: string }
                      message: { type: string }
                      observedGeneration: { type: integer }
                      lastTransitionTime: { type: string, format: date-time }
`;

export async function startCluster(
  namespace = "sdk-test",
): Promise<{ cp: ControlPlane; kc: KubeConfig; client: KubeClient; metrics: SdkMetrics }> {
  const cp = await ControlPlane.start();
  await cp.kubectlOk(["apply", "-f", "-"], { input: crd });
  await cp.kubectlOk(["wait", "--for=condition=Established", "--timeout=30s", "crd/widgets.sdk.kubexen.io"]);
  await cp.kubectlOk(["create", "namespace", namespace]);
  const kc = cp.kubeConfig();
  const metrics = new SdkMetrics();
  return { cp, kc, client: new KubeClient(kc, { metrics }), metrics };
}

export function widget(
  name: string,
  spec: Widget["spec"],
  namespace = "sdk-test",
  labels?: Record<string, string>,
): Widget {
  return { apiVersion: "sdk.kubexen.io/v1", kind: "Widget", metadata: { name, namespace, labels }, spec };
}

export const quietLogger = createLogger("sdk-test", process.env.LOG_LEVEL ?? "warn");

export async function metricValue(
  metrics: SdkMetrics,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
  let sum = 0;
  for (const v of (m?.values ?? []) as Array<{ labels: Record<string, string | number>; value: number }>) {
    if (Object.entries(labels).every(([k, val]) => v.labels[k] === val)) sum += v.value;
  }
  return sum;
}

export { KubeConfig };

/** A TCP proxy whose open connections can be frozen: bytes stop flowing, sockets stay open (a half-dead network path). */
export async function frozenProxy(
  targetPort: number,
): Promise<{ port: number; connections: () => number; freezeAll: () => void; close: () => void }> {
  const pairs: Array<{ a: Socket; b: Socket; frozen: boolean }> = [];
  const server: Server = createServer((a) => {
    const b = connect(targetPort, "127.0.0.1");
    const pair = { a, b, frozen: false };
    pairs.push(pair);
    a.on("data", (d) => {
      if (!pair.frozen) b.write(d);
    });
    b.on("data", (d) => {
      if (!pair.frozen) a.write(d);
    });
    a.on("error", () => b.destroy());
    b.on("error", () => a.destroy());
    a.on("close", () => b.destroy());
    b.on("close", () => a.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const addr = server.address();
  return {
    port: typeof addr === "object" && addr ? addr.port : 0,
    connections: () => pairs.length,
    freezeAll: () => {
      for (const p of pairs) p.frozen = true;
    },
    close: () => {
      for (const p of pairs) {
        p.a.destroy();
        p.b.destroy();
      }
      server.close();
    },
  };
}
