// A fleet of simulated Xen hosts, each with its node agent (in this
// process), migration certificates from a fresh CA, and a migration endpoint
// on loopback: for the demo, the operator's tests and benchmarks.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { type SimHostOptions, SimHypervisor } from "@kubexen/hypervisor";
import { NodeAgent, SimWatchdog } from "@kubexen/node-agent";
import type { Logger } from "@kubexen/sdk";
import type { ControlPlane } from "./controlplane/controlplane.ts";
import { issueHostCert, type KeyPair, makeCa } from "./controlplane/pki.ts";
import { freePort } from "./controlplane/ports.ts";

/**
 * Where the domains of the repository's tests, demo and benchmarks keep their kernels and disks
 * (examples/ included): the agents check paths against the real filesystem of this machine, where
 * most of them do not exist, so they resolve as written.
 */
export const SIM_FLEET_PATH_ROOTS: readonly string[] = [
  "/boot",
  "/dev/vg0",
  "/var/lib/kubexen/images",
  "/var/lib/kubexen/kernels",
  "/var/lib/xen/images",
  "/var/lib/xen/iso",
];
export const SIM_FLEET_BRIDGES: readonly string[] = ["xenbr0", "xenbr1"];

export interface SimFleet {
  /** The fleet's migration CA: pass `migrationCa` to the operator, which alone holds the key. */
  ca: KeyPair;
  /** The CA as the operator's `migrationCa` option takes it (PEM). */
  migrationCa: { cert: string; key: string };
  sims: Map<string, SimHypervisor>;
  agents: Map<string, NodeAgent>;
  stop(): Promise<void>;
}

export async function startSimFleet(
  cp: ControlPlane,
  hosts: Array<Omit<SimHostOptions, "hostname"> & { name: string }>,
  opts: {
    logger?: Logger;
    heartbeatIntervalMs?: number;
    leaseDurationSeconds?: number;
    reportIntervalMs?: number;
    cpuReportIntervalMs?: number;
    persist?: boolean;
    /** Credentials per host (default: the control plane's admin). */
    kubeConfigFor?: (host: string) => KubeConfig;
    /** dom0 directories the agents allow domains to use (default SIM_FLEET_PATH_ROOTS). */
    allowedPathRoots?: readonly string[];
    /** Bridges the agents allow (default SIM_FLEET_BRIDGES). */
    allowedBridges?: readonly string[];
    /** PCI devices the agents pass through (default none). */
    allowedPciDevices?: readonly string[];
    /**
     * Agents ask for their migration certificates through the CSR API, as real hosts do, instead of
     * being given ones issued ahead (needs agent identities the operator's signer accepts).
     */
    requestCertificates?: boolean;
    /** The migration CA (default: a new one). */
    ca?: KeyPair;
    /** Self-fencing through each sim's watchdog. */
    fencing?: { fenceTimeoutMs: number; watchdogTimeoutMs: number };
  } = {},
): Promise<SimFleet> {
  const ca = opts.ca ?? (await makeCa(cp.dir, "migration-ca"));
  const sims = new Map<string, SimHypervisor>();
  const agents = new Map<string, NodeAgent>();
  for (const { name, ...simOpts } of hosts) {
    const certs = opts.requestCertificates ? undefined : await issueHostCert(cp.dir, ca, name);
    const port = await freePort();
    const sim = new SimHypervisor({
      hostname: name,
      stateDir: opts.persist ? join(cp.dir, "sim") : undefined,
      ...simOpts,
    });
    const agent = new NodeAgent({
      kubeConfig: opts.kubeConfigFor?.(name) ?? cp.kubeConfig(),
      host: name,
      hypervisor: sim,
      allowedPathRoots: opts.allowedPathRoots ?? SIM_FLEET_PATH_ROOTS,
      allowedBridges: opts.allowedBridges ?? SIM_FLEET_BRIDGES,
      allowedPciDevices: opts.allowedPciDevices,
      logger: opts.logger,
      heartbeatIntervalMs: opts.heartbeatIntervalMs,
      leaseDurationSeconds: opts.leaseDurationSeconds,
      reportIntervalMs: opts.reportIntervalMs,
      cpuReportIntervalMs: opts.cpuReportIntervalMs,
      fencing: opts.fencing && { watchdog: new SimWatchdog(sim), ...opts.fencing },
      migrationEndpoint: `127.0.0.1:${port}`,
      migration: {
        ca: readFileSync(ca.certFile),
        // Issued ahead from the CA, or asked for through the CSR API as a host does (the operator signs).
        cert: opts.requestCertificates
          ? undefined
          : certs && { cert: readFileSync(certs.certFile), key: readFileSync(certs.keyFile) },
        certDir: join(cp.dir, "agents", name, "pki"),
        listenPort: port,
        listenHost: "127.0.0.1",
      },
    });
    await agent.start();
    sims.set(name, sim);
    agents.set(name, agent);
  }
  return {
    ca,
    migrationCa: { cert: readFileSync(ca.certFile, "utf8"), key: readFileSync(ca.keyFile, "utf8") },
    sims,
    agents,
    stop: async () => {
      for (const a of agents.values()) await a.stop();
    },
  };
}
