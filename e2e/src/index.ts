export { crdDir, installKubexen, startKubexenControlPlane } from "./cluster.ts";
export { type Binaries, binaries } from "./controlplane/binaries.ts";
export { type CommandResult, ControlPlane, type ControlPlaneOptions } from "./controlplane/controlplane.ts";
export { issueHostCert, type KeyPair, makeCa } from "./controlplane/pki.ts";
export { freePort } from "./controlplane/ports.ts";
export { type SimFleet, startSimFleet } from "./fleet.ts";
export { logger } from "./log.ts";
export { pidAlive, type Supervised, startSupervised } from "./supervised.ts";
export { until } from "./wait.ts";
