// The sim driver: a simulated Xen host behind the same interface as xl, for
// scale tests, benchmarks and the demo. This is the composition: every call
// passes the injected faults (faults.ts) and the host's availability, then
// acts on the host's domains (domains.ts) or migrates one (migration.ts, with
// the pre-copy model of precopy.ts over the stream of wire.ts). The host's
// own failures live here: a crash, and the watchdog that resets the host.
import { randomUUID } from "node:crypto";
import type { Duplex } from "node:stream";
import { HypervisorError } from "../errors.ts";
import type {
  DomainConfig,
  DomainInfo,
  HostInfo,
  Hypervisor,
  HypervisorEvent,
  MigrateReceiveOptions,
  MigrateSendOptions,
  MigrationStats,
} from "../types.ts";
import { SimDomains } from "./domains.ts";
import { callFaults, ignoresShutdown, type SimFaults, sleep, takeMigrationFault } from "./faults.ts";
import { hostInfoOf, type SimHostConfig, type SimHostOptions, withDefaults } from "./host.ts";
import { type MigrationEnd, receiveDomain, resumeMigratedAway, sendDomain } from "./migration.ts";

export type { MigrationFaultPhase, SimFaults } from "./faults.ts";
export type { SimHostOptions } from "./host.ts";

export class SimHypervisor implements Hypervisor {
  readonly kind = "sim" as const;
  readonly opts: SimHostConfig;
  faults: SimFaults = {};
  /** Times the watchdog has reset this host. */
  watchdogResets = 0;
  private readonly domains: SimDomains;
  private crashed = false;
  private watchdogDeadline: number | undefined;
  private watchdogTimer: NodeJS.Timeout | undefined;
  private readonly migrationEnd: MigrationEnd;

  constructor(opts: SimHostOptions) {
    this.opts = withDefaults(opts);
    this.domains = new SimDomains(this.opts);
    this.watchdogDeadline = this.domains.watchdogDeadline;
    // The watchdog expired while nothing fed it (the agent was dead): the host has reset.
    if (opts.stateDir) this.checkWatchdog();
    this.migrationEnd = {
      config: this.opts,
      domains: this.domains,
      fault: (side, phase) => takeMigrationFault(this.faults, side, phase),
    };
  }

  // ---- the host watchdog (as Xen's, through xen_wdt) ----

  /** Arms the watchdog: the host resets unless fed within `timeoutMs`. Persisted, so it fires even if the feeder dies. */
  feedWatchdog(timeoutMs: number): void {
    this.checkWatchdog();
    if (this.crashed) return;
    this.watchdogDeadline = Date.now() + timeoutMs;
    clearTimeout(this.watchdogTimer);
    this.watchdogTimer = setTimeout(() => this.checkWatchdog(), timeoutMs + 10);
    this.watchdogTimer.unref();
    this.domains.persist();
  }

  /** Disarms the watchdog (a clean stop of the feeder). */
  disarmWatchdog(): void {
    this.watchdogDeadline = undefined;
    clearTimeout(this.watchdogTimer);
    this.domains.persist();
  }

  /** Resets the host if its watchdog expired. */
  private checkWatchdog(): void {
    if (this.watchdogDeadline !== undefined && Date.now() > this.watchdogDeadline) {
      this.watchdogDeadline = undefined;
      this.watchdogResets++;
      this.crash();
      // A watchdog reset reboots the host: it comes back empty.
      this.crashed = false;
    }
  }

  // ---- simulation controls (not part of the Hypervisor interface) ----

  /** The host dies: every domain is gone and calls fail until recover(). */
  crash(): void {
    this.crashed = true;
    this.domains.wipe();
  }

  recover(): void {
    this.crashed = false;
    this.faults = {};
  }

  get isCrashed(): boolean {
    return this.crashed;
  }

  /** Something happens inside a guest: it crashes, powers off or reboots itself. */
  guestEvent(uuid: string, what: "crash" | "poweroff" | "reboot"): void {
    this.domains.guestEvent(uuid, what);
  }

  /** Sets a domain's CPU load (per vCPU, 0..1) and page-dirtying rate. */
  setWorkload(uuid: string, w: { load?: number; dirtyPagesPerSec?: number }): void {
    this.domains.setWorkload(uuid, w);
  }

  /** Starts a domain outside of kubexen, as an administrator with xl would. */
  async createOrphan(name: string, memoryMiB = 128): Promise<DomainInfo> {
    return this.create({
      name,
      uuid: randomUUID(),
      macs: [],
      spec: {
        type: "pvh",
        vcpus: 1,
        memory: `${memoryMiB}Mi`,
        boot: { kernel: "/boot/vmlinuz" },
        priority: 0,
        runStrategy: "Manual",
        powerState: "Running",
        evictionStrategy: "None",
        terminationGracePeriodSeconds: 10,
      },
    });
  }

  freeMemoryMiB(): number {
    return this.domains.freeMemoryMiB();
  }

  // ---- the Hypervisor interface ----

  /** What every call passes first: the watchdog, injected hangs and delays, a host that is down. */
  private async gate(method: string): Promise<void> {
    this.checkWatchdog();
    await callFaults(this.faults, method);
    if (this.crashed) throw new HypervisorError("Unavailable", `host ${this.opts.hostname} is down`);
  }

  async hostInfo(): Promise<HostInfo> {
    await this.gate("hostInfo");
    return hostInfoOf(this.opts, this.freeMemoryMiB());
  }

  async listDomains(): Promise<DomainInfo[]> {
    await this.gate("listDomains");
    return this.domains.list();
  }

  async getDomain(uuid: string): Promise<DomainInfo | undefined> {
    await this.gate("getDomain");
    return this.domains.find(uuid);
  }

  async create(config: DomainConfig, opts: { paused?: boolean } = {}): Promise<DomainInfo> {
    await this.gate("create");
    return this.domains.create(config, !!opts.paused);
  }

  async shutdown(uuid: string, timeoutMs: number): Promise<"shutdown" | "destroyed"> {
    await this.gate("shutdown");
    const d = this.domains.get(uuid);
    if (ignoresShutdown(this.faults, uuid) || !this.domains.answersShutdown(d)) {
      // xl waits out the timeout, then destroys (scaled like the rest of the sim's time).
      await sleep(Math.min(timeoutMs, 5000 * this.opts.timeScale + timeoutMs * this.opts.timeScale));
      await this.destroy(uuid);
      return "destroyed";
    }
    this.domains.remove(d);
    return "shutdown";
  }

  async destroy(uuid: string): Promise<void> {
    await this.gate("destroy");
    this.domains.remove(this.domains.get(uuid));
  }

  async pause(uuid: string): Promise<void> {
    await this.gate("pause");
    this.domains.pause(uuid);
  }

  async unpause(uuid: string): Promise<void> {
    await this.gate("unpause");
    this.domains.unpause(uuid);
  }

  async reboot(uuid: string): Promise<void> {
    await this.gate("reboot");
    this.domains.get(uuid);
    this.domains.guestEvent(uuid, "reboot");
  }

  async save(uuid: string, path: string): Promise<void> {
    await this.gate("save");
    this.domains.save(uuid, path);
  }

  async restore(path: string, opts: { paused?: boolean } = {}): Promise<DomainInfo> {
    await this.gate("restore");
    return this.domains.restore(path, !!opts.paused);
  }

  async setMemory(uuid: string, mib: number): Promise<void> {
    await this.gate("setMemory");
    this.domains.setMemory(uuid, mib);
  }

  async setVcpus(uuid: string, vcpus: number): Promise<void> {
    await this.gate("setVcpus");
    this.domains.setVcpus(uuid, vcpus);
  }

  async setCredit2(uuid: string, p: { weight: number; cap: number }): Promise<void> {
    await this.gate("setCredit2");
    this.domains.setCredit2(uuid, p);
  }

  async consoleLog(uuid: string, maxBytes = 64 * 1024): Promise<string> {
    await this.gate("consoleLog");
    return this.domains.consoleLog(uuid, maxBytes);
  }

  watch(onEvent: (e: HypervisorEvent) => void): () => void {
    return this.domains.watch(onEvent);
  }

  async close(): Promise<void> {
    this.domains.unwatchAll();
    clearTimeout(this.watchdogTimer);
  }

  // ---- live migration ----

  async migrateSend(uuid: string, transport: Duplex, opts: MigrateSendOptions = {}): Promise<MigrationStats> {
    await this.gate("migrateSend");
    return sendDomain(this.migrationEnd, uuid, transport, opts);
  }

  async resumeMigratedAway(uuid: string): Promise<DomainInfo> {
    await this.gate("unpause");
    return resumeMigratedAway(this.domains, uuid);
  }

  async migrateReceive(transport: Duplex, opts: MigrateReceiveOptions = {}): Promise<DomainInfo> {
    await this.gate("migrateReceive");
    return receiveDomain(this.migrationEnd, transport, opts);
  }
}
