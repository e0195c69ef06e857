#!/usr/bin/env node
// kubexen-node-agent: one per Xen host, in its dom0 (a DaemonSet pod or a
// systemd service with a kubeconfig bound to the host's ServiceAccount).
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { parseArgs } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { type Hypervisor, SimHypervisor, XlHypervisor } from "@kubexen/hypervisor";
import { createLogger, parseServingFlags, servingFlags } from "@kubexen/sdk";
import { z } from "zod";
import { NodeAgent } from "./agent.ts";
import { DEFAULT_BRIDGES, DEFAULT_PATH_ROOTS, invalidBridge, invalidPciDevice, invalidRoot } from "./confine.ts";
import { LinuxWatchdog, SimWatchdog, type Watchdog, XenWatchdog } from "./fence.ts";

const { values } = parseArgs({
  options: {
    kubeconfig: { type: "string" },
    host: { type: "string" },
    driver: { type: "string", default: "xl" },
    namespace: { type: "string", default: "kubexen-system" },
    "migration-endpoint": { type: "string" },
    fencing: { type: "string", default: "auto" },
    "fence-timeout": { type: "string", default: "40" },
    "heartbeat-interval": { type: "string", default: "10" },
    "lease-duration": { type: "string", default: "40" },
    "cpu-report-interval": { type: "string", default: "300" },
    "watchdog-timeout": { type: "string", default: "30" },
    "save-dir": { type: "string", default: "/var/lib/kubexen/save" },
    "allowed-path-root": { type: "string", multiple: true, default: [...DEFAULT_PATH_ROOTS] },
    "allowed-bridge": { type: "string", multiple: true, default: [...DEFAULT_BRIDGES] },
    "allowed-pci-device": { type: "string", multiple: true, default: [] },
    ...servingFlags,
    "sim-memory-mib": { type: "string", default: "65536" },
    "sim-cpus": { type: "string", default: "16" },
    "sim-state-dir": { type: "string" },
    // The sim's link and clock: slow, real-time transfers let tests and soaks act mid-migration.
    "sim-link-mibps": { type: "string", default: "1250" },
    "sim-time-scale": { type: "string", default: "0.02" },
    "migration-listen": { type: "string", default: "0.0.0.0:9443" },
    // The migration CA's certificate only: its key stays with the operator.
    "tls-ca": { type: "string", default: "/etc/kubexen/migration/ca.crt" },
    // This host's key and certificate, kept here after the CSR API issued them (or given with --tls-cert/--tls-key).
    "cert-dir": { type: "string", default: "/var/lib/kubexen/pki" },
    "tls-cert": { type: "string" },
    "tls-key": { type: "string" },
    "no-migration": { type: "boolean", default: false },
  },
});

/** A flag's value that `why` finds nothing wrong with. */
const checkedBy = (flag: string, why: (v: string) => string | undefined) =>
  z.string().superRefine((v, ctx) => {
    const m = why(v);
    if (m) ctx.addIssue({ code: "custom", message: `${flag} ${m}` });
  });

const Args = z.object({
  host: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "--host must be a DNS name (the XenHost's name)"),
  driver: z.enum(["xl", "sim"]),
  fencing: z.enum(["auto", "xen", "linux", "sim", "off"]),
  fenceTimeout: z.coerce.number().int().min(5, "--fence-timeout is at least 5 seconds"),
  watchdogTimeout: z.coerce.number().int().min(2),
  heartbeatInterval: z.coerce.number().positive("--heartbeat-interval is a number of seconds"),
  leaseDuration: z.coerce.number().int().min(2, "--lease-duration is at least 2 seconds"),
  cpuReportInterval: z.coerce.number().int().min(10, "--cpu-report-interval is at least 10 seconds"),
  simMemoryMiB: z.coerce.number().int().min(1024),
  simCpus: z.coerce.number().int().min(1),
  simLinkMiBps: z.coerce.number().positive("--sim-link-mibps is MiB/s"),
  simTimeScale: z.coerce.number().positive("--sim-time-scale is a factor (1: real time)"),
  allowedPathRoots: z.array(checkedBy("--allowed-path-root", invalidRoot)).min(1, "--allowed-path-root: at least one"),
  // `--allowed-bridge=` (empty) alone allows no bridge at all.
  allowedBridges: z.array(checkedBy("--allowed-bridge", invalidBridge)),
  allowedPciDevices: z.array(checkedBy("--allowed-pci-device", invalidPciDevice)),
});

const parsed = Args.safeParse({
  host: values.host ?? process.env.KUBEXEN_HOST ?? process.env.NODE_NAME,
  driver: values.driver,
  fencing: values.fencing,
  fenceTimeout: values["fence-timeout"],
  watchdogTimeout: values["watchdog-timeout"],
  heartbeatInterval: values["heartbeat-interval"],
  leaseDuration: values["lease-duration"],
  cpuReportInterval: values["cpu-report-interval"],
  simMemoryMiB: values["sim-memory-mib"],
  simCpus: values["sim-cpus"],
  simLinkMiBps: values["sim-link-mibps"],
  simTimeScale: values["sim-time-scale"],
  allowedPathRoots: values["allowed-path-root"],
  allowedBridges: (values["allowed-bridge"] ?? []).filter((b) => b !== ""),
  allowedPciDevices: values["allowed-pci-device"] ?? [],
});
if (!parsed.success) {
  for (const i of parsed.error.issues) console.error(`kubexen-node-agent: ${i.path.join(".")}: ${i.message}`);
  process.exit(2);
}
let serving: ReturnType<typeof parseServingFlags>;
try {
  serving = parseServingFlags(values);
} catch (err) {
  console.error(`kubexen-node-agent: ${(err as Error).message}`);
  process.exit(2);
}
const a = parsed.data;
const log = createLogger(`kubexen-node-agent/${a.host}`);
const kubeConfig = new KubeConfig();
if (values.kubeconfig) kubeConfig.loadFromFile(values.kubeconfig);
else kubeConfig.loadFromDefault();

const hv: Hypervisor =
  a.driver === "sim"
    ? new SimHypervisor({
        hostname: a.host,
        memoryMiB: a.simMemoryMiB,
        cpus: a.simCpus,
        linkMiBps: a.simLinkMiBps,
        timeScale: a.simTimeScale,
        stateDir: values["sim-state-dir"],
      })
    : new XlHypervisor();
const fencingKind = a.fencing === "auto" ? (a.driver === "xl" ? "xen" : "off") : a.fencing;
let watchdog: Watchdog | undefined;
if (fencingKind === "xen") watchdog = new XenWatchdog();
else if (fencingKind === "linux") watchdog = new LinuxWatchdog();
else if (fencingKind === "sim") {
  if (!(hv instanceof SimHypervisor)) throw new Error("--fencing sim needs --driver sim");
  watchdog = new SimWatchdog(hv);
}

function migrationConfig() {
  if (values["no-migration"]) return undefined;
  const listen = values["migration-listen"] ?? "0.0.0.0:9443";
  const i = listen.lastIndexOf(":");
  const read = (flag: "tls-cert" | "tls-key" | "tls-ca") => {
    try {
      return readFileSync(values[flag] ?? "");
    } catch (err) {
      console.error(
        `kubexen-node-agent: --${flag} ${values[flag]}: ${(err as Error).message} (or pass --no-migration)`,
      );
      process.exit(2);
    }
  };
  if (!values["tls-cert"] !== !values["tls-key"]) {
    console.error(
      "kubexen-node-agent: --tls-cert and --tls-key go together (or give neither: the agent asks for its own)",
    );
    process.exit(2);
  }
  const endpointHost = values["migration-endpoint"]?.slice(0, values["migration-endpoint"].lastIndexOf(":"));
  return {
    ca: read("tls-ca"),
    cert: values["tls-cert"] ? { cert: read("tls-cert"), key: read("tls-key") } : undefined,
    certDir: values["cert-dir"],
    ips: endpointHost && isIP(endpointHost) ? [endpointHost] : [],
    listenHost: listen.slice(0, i),
    listenPort: Number(listen.slice(i + 1)),
  };
}

const agent = new NodeAgent({
  migration: migrationConfig(),
  kubeConfig,
  host: a.host,
  hypervisor: hv,
  namespace: values.namespace,
  migrationEndpoint: values["migration-endpoint"],
  saveDir: values["save-dir"],
  allowedPathRoots: a.allowedPathRoots,
  allowedBridges: a.allowedBridges,
  allowedPciDevices: a.allowedPciDevices,
  heartbeatIntervalMs: a.heartbeatInterval * 1000,
  cpuReportIntervalMs: a.cpuReportInterval * 1000,
  leaseDurationSeconds: a.leaseDuration,
  serving,
  logger: log,
  fencing: watchdog
    ? { watchdog, fenceTimeoutMs: a.fenceTimeout * 1000, watchdogTimeoutMs: a.watchdogTimeout * 1000 }
    : undefined,
});
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.once(sig, () => {
    log.info({ signal: sig }, "stopping");
    void agent.stop().then(() => process.exit(0));
  });
}
await agent.start();
