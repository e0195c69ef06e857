// A simulated host's hardware and build: the options a sim host is made with,
// their defaults, and what `xl info` would report of them.
import type { GuestType } from "@kubexen/crds";
import type { HostInfo } from "../types.ts";

export interface SimHostOptions {
  hostname: string;
  cpus?: number;
  memoryMiB?: number;
  dom0MemoryMiB?: number;
  dom0Vcpus?: number;
  xenVersion?: string;
  hap?: boolean;
  /** Shadow paging compiled in (Debian's build has none: PV cannot live-migrate). */
  shadow?: boolean;
  pciAssignable?: string[];
  /** Paths that exist on this host; undefined: every path exists. */
  files?: string[];
  /** Directory to persist state in, so domains survive the agent's restart. */
  stateDir?: string;
  /** Modelled link bandwidth for migrations, MiB/s (default 1250, 10 GbE). */
  linkMiBps?: number;
  /** Real seconds per modelled second of migration (default 0.02). */
  timeScale?: number;
  /** Bytes put on the wire per modelled byte (default 1/1024). */
  wireScale?: number;
}

/** The options with every default filled in. */
export type SimHostConfig = Required<Omit<SimHostOptions, "files" | "stateDir" | "pciAssignable">> & SimHostOptions;

export function withDefaults(opts: SimHostOptions): SimHostConfig {
  return {
    cpus: 16,
    memoryMiB: 65536,
    dom0MemoryMiB: 2048,
    dom0Vcpus: 2,
    xenVersion: "4.17.7-sim",
    hap: true,
    shadow: false,
    linkMiBps: 1250,
    timeScale: 0.02,
    wireScale: 1 / 1024,
    ...opts,
  };
}

/** What `xl info` reports: HAP runs pvh and hvm guests and migrates them; pv migrates only with shadow paging. */
export function hostInfoOf(c: SimHostConfig, freeMemoryMiB: number): HostInfo {
  const guestTypes: GuestType[] = c.hap ? ["pv", "pvh", "hvm"] : ["pv"];
  const liveMigratable = guestTypes.filter((t) => (t === "pv" ? c.shadow : c.hap));
  return {
    hostname: c.hostname,
    xenVersion: c.xenVersion,
    cpus: c.cpus,
    numaNodes: 1,
    totalMemoryMiB: c.memoryMiB,
    freeMemoryMiB,
    dom0MemoryMiB: c.dom0MemoryMiB,
    dom0Vcpus: c.dom0Vcpus,
    scheduler: "credit2",
    hap: c.hap,
    shadow: c.shadow,
    guestTypes,
    liveMigratable,
    pciAssignable: c.pciAssignable ?? [],
  };
}
