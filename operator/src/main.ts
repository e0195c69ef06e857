#!/usr/bin/env node
// kubexen-operator: runs with 2 or more replicas; one leads at a time.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { createLogger, parseServingFlags, servingFlags } from "@kubexen/sdk";
import { Operator } from "./operator.ts";

const { values } = parseArgs({
  options: {
    kubeconfig: { type: "string" },
    namespace: { type: "string", default: process.env.POD_NAMESPACE ?? "kubexen-system" },
    ...servingFlags,
    "leader-elect": { type: "boolean", default: true },
    "no-leader-elect": { type: "boolean", default: false },
    "no-crd-upgrade": { type: "boolean", default: false },
    "fence-margin": { type: "string", default: "15" },
    "migration-ca-cert": { type: "string" },
    "migration-ca-key": { type: "string" },
  },
});
let serving: ReturnType<typeof parseServingFlags>;
try {
  serving = parseServingFlags(values, { metricsPort: 8080 });
} catch (err) {
  console.error(`kubexen-operator: ${(err as Error).message}`);
  process.exit(2);
}
const margin = Number(values["fence-margin"]);
if (!Number.isFinite(margin) || margin < 0) {
  console.error(`kubexen-operator: --fence-margin must be seconds (0 or more), got ${values["fence-margin"]}`);
  process.exit(2);
}
// The migration CA: the operator signs agents' migration certificates with it (both flags, or neither).
const caFlags = [values["migration-ca-cert"], values["migration-ca-key"]];
if (caFlags.filter(Boolean).length === 1) {
  console.error("kubexen-operator: --migration-ca-cert and --migration-ca-key go together");
  process.exit(2);
}
let migrationCa: { cert: string; key: string } | undefined;
try {
  migrationCa =
    caFlags[0] && caFlags[1]
      ? { cert: readFileSync(caFlags[0], "utf8"), key: readFileSync(caFlags[1], "utf8") }
      : undefined;
} catch (err) {
  console.error(`kubexen-operator: the migration CA: ${(err as Error).message}`);
  process.exit(2);
}
const log = createLogger("kubexen-operator");
const kubeConfig = new KubeConfig();
if (values.kubeconfig) kubeConfig.loadFromFile(values.kubeconfig);
else kubeConfig.loadFromDefault();
const op = new Operator({
  kubeConfig,
  namespace: values.namespace,
  serving,
  // The CRDs are versioned with the operator's package.
  crdRelease: values["no-crd-upgrade"]
    ? undefined
    : (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version,
  leaderElection: !values["no-leader-elect"],
  identity: process.env.POD_NAME,
  fenceMarginMs: margin * 1000,
  migrationCa,
  logger: log,
});
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.once(sig, () => {
    log.info({ signal: sig }, "stopping");
    void op.stop().then(() => process.exit(0));
  });
}
await op.start();
