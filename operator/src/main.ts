#!/usr/bin/env node
// kubexen-operator: runs with 2 or more replicas; one leads at a time.
import { parseArgs } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { createLogger } from "@kubexen/sdk";
import { Operator } from "./operator.ts";

const { values } = parseArgs({
  options: {
    kubeconfig: { type: "string" },
    namespace: { type: "string", default: process.env.POD_NAMESPACE ?? "kubexen-system" },
    "metrics-port": { type: "string", default: "8080" },
    "leader-elect": { type: "boolean", default: true },
    "no-leader-elect": { type: "boolean", default: false },
    "fence-margin": { type: "string", default: "15" },
  },
});
const port = Number(values["metrics-port"]);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`kubexen-operator: --metrics-port must be a port number, got ${values["metrics-port"]}`);
  process.exit(2);
}
const margin = Number(values["fence-margin"]);
if (!Number.isFinite(margin) || margin < 0) {
  console.error(`kubexen-operator: --fence-margin must be seconds (0 or more), got ${values["fence-margin"]}`);
  process.exit(2);
}
const log = createLogger("kubexen-operator");
const kubeConfig = new KubeConfig();
if (values.kubeconfig) kubeConfig.loadFromFile(values.kubeconfig);
else kubeConfig.loadFromDefault();
const op = new Operator({
  kubeConfig,
  namespace: values.namespace,
  metricsPort: port,
  leaderElection: !values["no-leader-elect"],
  identity: process.env.POD_NAME,
  fenceMarginMs: margin * 1000,
  logger: log,
});
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.once(sig, () => {
    log.info({ signal: sig }, "stopping");
    void op.stop().then(() => process.exit(0));
  });
}
await op.start();
