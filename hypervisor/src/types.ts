// The driver-agnostic view of a Xen host and its domains. Types of the
// desired guest come from crds (XenDomainSpec); these describe what the
// hypervisor reports and what the node agent asks of it.
import type { Duplex } from "node:stream";
import type { GuestType, HypervisorState, XenDomainSpec } from "@kubexen/crds";

export interface HostInfo {
  hostname: string;
  xenVersion: string;
  /** Physical CPUs (threads). */
  cpus: number;
  numaNodes: number;
  cpuMhz?: number;
  totalMemoryMiB: number;
  freeMemoryMiB: number;
  /** Memory dom0 holds, in MiB. */
  dom0MemoryMiB: number;
  dom0Vcpus: number;
  scheduler: string;
  hap: boolean;
  shadow: boolean;
  guestTypes: GuestType[];
  /** Guest types that can live-migrate from and to this host. */
  liveMigratable: GuestType[];
  pciAssignable: string[];
}

export interface DomainInfo {
  /** The domain's Xen UUID: its identity; names and domids change. */
  uuid: string;
  /** Name without migration suffixes. */
  name: string;
  /** Suffix xl adds during migration, if any. */
  migration?: "incoming" | "migratedaway";
  domid: number;
  state: HypervisorState;
  memoryMiB: number;
  vcpus: number;
  cpuTimeSeconds: number;
  type?: GuestType;
}

/** What to create: the user's spec plus the identity the system generated. */
export interface DomainConfig {
  name: string;
  uuid: string;
  spec: XenDomainSpec;
  /** One MAC per spec.networks entry (generated ones included). */
  macs: string[];
}

export interface MigrationProgress {
  round: number;
  bytesSent: number;
  dirtyPages?: number;
  /** The CPU throttle auto-converge applies now (0 to 0.99). */
  throttle?: number;
}

export interface MigrationStats {
  bytes: number;
  rounds: number;
  downtimeMs: number;
  totalMs: number;
  /** The highest CPU throttle auto-converge applied (0 to 0.99). */
  throttle?: number;
}

export interface MigrateSendOptions {
  /** Bandwidth cap in MiB/s (0 or absent: unlimited). */
  bandwidthMiBps?: number;
  /** Throttle a guest whose pre-copy does not converge. */
  autoConverge?: boolean;
  onProgress?: (p: MigrationProgress) => void;
  signal?: AbortSignal;
}

export interface MigrateReceiveOptions {
  /** Called when the stream announced the domain, before memory arrives. */
  onAnnounce?: (d: { uuid: string; name: string; memoryMiB: number }) => void;
  signal?: AbortSignal;
  /** The arriving domain's UUID, when the caller knows it (names the receiver's scope on systemd hosts). */
  uuid?: string;
}

export type HypervisorEvent =
  | {
      type: "state";
      uuid: string;
      name: string;
      state: HypervisorState;
      /** Why, when known: `create` and `restore` mean a fresh start of the guest here. */
      reason?: "poweroff" | "reboot" | "crash" | "suspend" | "create" | "restore";
    }
  | { type: "gone"; uuid: string; name: string };

/**
 * A Xen host as the node agent drives it. Every method names the domain by
 * UUID. Failures are HypervisorErrors with a code to act on.
 */
export interface Hypervisor {
  readonly kind: "xl" | "sim";
  hostInfo(): Promise<HostInfo>;
  listDomains(): Promise<DomainInfo[]>;
  getDomain(uuid: string): Promise<DomainInfo | undefined>;
  create(config: DomainConfig, opts?: { paused?: boolean }): Promise<DomainInfo>;
  /** Clean shutdown; destroys the domain if it has not stopped within `timeoutMs`. Returns how it ended. */
  shutdown(uuid: string, timeoutMs: number): Promise<"shutdown" | "destroyed">;
  destroy(uuid: string): Promise<void>;
  pause(uuid: string): Promise<void>;
  unpause(uuid: string): Promise<void>;
  reboot(uuid: string): Promise<void>;
  /** Saves memory and state to `path` on the host; the domain stops. */
  save(uuid: string, path: string): Promise<void>;
  /** `uuid`: the saved domain's, when the caller knows it (names its scope on systemd hosts). */
  restore(path: string, opts?: { paused?: boolean; uuid?: string }): Promise<DomainInfo>;
  setMemory(uuid: string, mib: number): Promise<void>;
  setVcpus(uuid: string, vcpus: number): Promise<void>;
  setCredit2(uuid: string, params: { weight: number; cap: number }): Promise<void>;
  /**
   * Sends a running domain over `transport` to a peer running migrateReceive.
   * On success the domain is gone from this host. On failure it keeps
   * running here, except when the link broke after the peer was told to take
   * over: then it stays paused here (name --migratedaway) and MigrationError.ambiguous is true.
   */
  migrateSend(uuid: string, transport: Duplex, opts?: MigrateSendOptions): Promise<MigrationStats>;
  /**
   * Takes back a copy left paused as --migratedaway after an ambiguous
   * migration, once the cluster knows the target does not run it: the name
   * loses its suffix and the domain runs again. (When the target does run it,
   * the leftover copy is destroyed instead.)
   */
  resumeMigratedAway(uuid: string): Promise<DomainInfo>;
  /** Receives a domain from `transport`; resolves when it runs here. */
  migrateReceive(transport: Duplex, opts?: MigrateReceiveOptions): Promise<DomainInfo>;
  /** The guest's console output so far (as much as the host keeps). */
  consoleLog(uuid: string, maxBytes?: number): Promise<string>;
  /** State changes; the returned function unsubscribes. Drivers may poll. */
  watch(onEvent: (e: HypervisorEvent) => void): () => void;
  close(): Promise<void>;
}
