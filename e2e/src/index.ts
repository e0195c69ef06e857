export { admissionReady, crdDir, installKubexen, startKubexenControlPlane } from "./cluster.ts";
export { type Binaries, binaries } from "./controlplane/binaries.ts";
export { type CommandResult, ControlPlane, type ControlPlaneOptions } from "./controlplane/controlplane.ts";
export { issueHostCert, type KeyPair, makeCa } from "./controlplane/pki.ts";
export { freePort } from "./controlplane/ports.ts";
export { SIM_FLEET_BRIDGES, SIM_FLEET_PATH_ROOTS, type SimFleet, startSimFleet } from "./fleet.ts";
export { logger } from "./log.ts";
export { OverlapRecorder } from "./overlap.ts";
export { TcpProxy } from "./proxy.ts";
export {
  type FleetView,
  parseSimState,
  runningTwice,
  runsGuest,
  type SimDomainView,
  SimStateRecorder,
} from "./sim-state.ts";
export { pidAlive, type Supervised, startSupervised } from "./supervised.ts";
export { until } from "./wait.ts";
export { LabHost } from "./xenlab/host.ts";
export { labHostName, XenLab } from "./xenlab/lab.ts";
