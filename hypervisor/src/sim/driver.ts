// The sim driver: a simulated Xen host behind the same interface as xl, for
// scale tests, benchmarks and the demo. Memory is accounted as Xen does it
// (total less dom0 less every domain); CPU time accrues from each domain's
// load; live migration follows libxc's pre-copy (precopy.ts) and really sends
// its bytes, scaled by `wireScale`, over the transport the caller gives, with
// xl's handshake. State can persist in a directory so domains outlive the
// agent process, as real domains outlive a dead dom0 agent.
import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import type { GuestType, HypervisorState } from "@kubexen/crds";
import { quantityMiB } from "@kubexen/crds";
import { HypervisorError, MigrationError } from "../errors.ts";
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
import { PAGE_BYTES, planPrecopy } from "./precopy.ts";
import { FrameReader, writeFrame } from "./wire.ts";

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

/** `handover`: the link breaks before the go reaches the target; `confirm`: after it, before the target confirms. */
export type MigrationFaultPhase = "prepare" | "precopy" | "stopcopy" | "handover" | "confirm" | "resume";

export interface SimFaults {
  /** Delay every call by this many ms. */
  delayMs?: number;
  /** Calls by these method names never return (until cleared). */
  hang?: string[];
  /** Fail the next migration (sent or received here) at this phase. */
  migration?: { phase: MigrationFaultPhase; side: "send" | "receive" };
  /** Domains (by UUID) that ignore a clean shutdown request. */
  ignoreShutdown?: string[];
}

interface SimDomain {
  uuid: string;
  name: string;
  migration?: "incoming" | "migratedaway";
  domid: number;
  state: HypervisorState;
  config: DomainConfig;
  memoryMiB: number;
  vcpus: number;
  /** CPU seconds accrued before `since`. */
  cpuBase: number;
  since: number;
  /** Load per vCPU, 0..1. */
  load: number;
  dirtyPagesPerSec: number;
  bootTime: number;
  weight: number;
  cap: number;
}

interface SavedImage {
  domain: SimDomain;
}

interface State {
  /** The host watchdog: the host resets when it is not fed before this time (ms since epoch). */
  watchdogDeadline?: number;
  nextDomid: number;
  domains: SimDomain[];
  images: Record<string, SavedImage>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class SimHypervisor implements Hypervisor {
  readonly kind = "sim" as const;
  readonly opts: Required<Omit<SimHostOptions, "files" | "stateDir" | "pciAssignable">> & SimHostOptions;
  faults: SimFaults = {};
  private domains = new Map<string, SimDomain>();
  private images = new Map<string, SavedImage>();
  private nextDomid = 1;
  private crashed = false;
  private listeners = new Set<(e: HypervisorEvent) => void>();
  private readonly statePath: string | undefined;
  private watchdogDeadline: number | undefined;
  private watchdogTimer: NodeJS.Timeout | undefined;

  constructor(opts: SimHostOptions) {
    this.opts = {
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
    if (opts.stateDir) {
      mkdirSync(opts.stateDir, { recursive: true });
      this.statePath = join(opts.stateDir, `${opts.hostname}.json`);
      this.load();
    }
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
    this.persist();
  }

  /** Disarms the watchdog (a clean stop of the feeder). */
  disarmWatchdog(): void {
    this.watchdogDeadline = undefined;
    clearTimeout(this.watchdogTimer);
    this.persist();
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

  /** Times the watchdog has reset this host. */
  watchdogResets = 0;

  // ---- simulation controls (not part of the Hypervisor interface) ----

  /** The host dies: every domain is gone and calls fail until recover(). */
  crash(): void {
    this.crashed = true;
    const lost = [...this.domains.values()];
    this.domains.clear();
    this.persist();
    for (const d of lost) this.emit({ type: "gone", uuid: d.uuid, name: d.name });
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
    const d = this.domains.get(uuid);
    if (!d) throw new HypervisorError("NotFound", `no domain ${uuid} on ${this.opts.hostname}`);
    this.accrue(d);
    if (what === "crash") {
      d.state = "crashed";
      this.emit({ type: "state", uuid, name: d.name, state: "crashed", reason: "crash" });
    } else if (what === "poweroff") {
      this.domains.delete(uuid);
      this.emit({ type: "gone", uuid, name: d.name });
    } else {
      d.domid = this.nextDomid++;
      d.bootTime = Date.now();
      d.state = "running";
      this.emit({ type: "state", uuid, name: d.name, state: "running", reason: "reboot" });
    }
    this.persist();
  }

  /** Sets a domain's CPU load (per vCPU, 0..1) and page-dirtying rate. */
  setWorkload(uuid: string, w: { load?: number; dirtyPagesPerSec?: number }): void {
    const d = this.domains.get(uuid);
    if (!d) throw new HypervisorError("NotFound", `no domain ${uuid} on ${this.opts.hostname}`);
    this.accrue(d);
    if (w.load !== undefined) d.load = Math.max(0, Math.min(1, w.load));
    if (w.dirtyPagesPerSec !== undefined) d.dirtyPagesPerSec = Math.max(0, w.dirtyPagesPerSec);
    this.persist();
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

  // ---- the Hypervisor interface ----

  private async gate(method: string): Promise<void> {
    this.checkWatchdog();
    if (this.faults.hang?.includes(method)) await new Promise(() => {});
    if (this.faults.delayMs) await sleep(this.faults.delayMs);
    if (this.crashed) throw new HypervisorError("Unavailable", `host ${this.opts.hostname} is down`);
  }

  private usedMiB(): number {
    let used = this.opts.dom0MemoryMiB;
    for (const d of this.domains.values()) used += d.memoryMiB;
    return used;
  }

  freeMemoryMiB(): number {
    return this.opts.memoryMiB - this.usedMiB();
  }

  async hostInfo(): Promise<HostInfo> {
    await this.gate("hostInfo");
    const guestTypes: GuestType[] = this.opts.hap ? ["pv", "pvh", "hvm"] : ["pv"];
    const liveMigratable = guestTypes.filter((t) => (t === "pv" ? this.opts.shadow : this.opts.hap));
    return {
      hostname: this.opts.hostname,
      xenVersion: this.opts.xenVersion,
      cpus: this.opts.cpus,
      numaNodes: 1,
      totalMemoryMiB: this.opts.memoryMiB,
      freeMemoryMiB: this.freeMemoryMiB(),
      dom0MemoryMiB: this.opts.dom0MemoryMiB,
      dom0Vcpus: this.opts.dom0Vcpus,
      scheduler: "credit2",
      hap: this.opts.hap,
      shadow: this.opts.shadow,
      guestTypes,
      liveMigratable,
      pciAssignable: this.opts.pciAssignable ?? [],
    };
  }

  private info(d: SimDomain): DomainInfo {
    this.accrue(d);
    return {
      uuid: d.uuid,
      name: d.name,
      migration: d.migration,
      domid: d.domid,
      state: d.state,
      memoryMiB: d.memoryMiB,
      vcpus: d.vcpus,
      cpuTimeSeconds: Math.round(d.cpuBase * 1000) / 1000,
      type: d.config.spec.type,
    };
  }

  private accrue(d: SimDomain): void {
    const now = Date.now();
    if (d.state === "running" || d.state === "blocked") d.cpuBase += ((now - d.since) / 1000) * d.load * d.vcpus;
    d.since = now;
  }

  async listDomains(): Promise<DomainInfo[]> {
    await this.gate("listDomains");
    return [...this.domains.values()].map((d) => this.info(d));
  }

  async getDomain(uuid: string): Promise<DomainInfo | undefined> {
    await this.gate("getDomain");
    const d = this.domains.get(uuid);
    return d && this.info(d);
  }

  private get(uuid: string): SimDomain {
    const d = this.domains.get(uuid);
    if (!d) throw new HypervisorError("NotFound", `no domain with UUID ${uuid} on ${this.opts.hostname}`);
    return d;
  }

  private fileExists(path: string): boolean {
    return !this.opts.files || this.opts.files.includes(path);
  }

  /** Checks what `xl create` would refuse, before anything is made. */
  private validate(c: DomainConfig, memoryMiB: number): void {
    const s = c.spec;
    const host = this.opts;
    if (s.type !== "pv" && !host.hap)
      throw new HypervisorError(
        "Unsupported",
        `${s.type} guests need hardware-assisted paging, which ${host.hostname} lacks`,
      );
    for (const [what, p] of [
      ["kernel", s.boot?.kernel],
      ["ramdisk", s.boot?.ramdisk],
    ] as const) {
      if (p && !this.fileExists(p))
        throw new HypervisorError("MissingFile", `${what} ${p} does not exist on ${host.hostname}`);
    }
    for (const disk of s.disks ?? []) {
      if (!this.fileExists(disk.source))
        throw new HypervisorError(
          "MissingFile",
          `disk ${disk.vdev}: ${disk.source} does not exist on ${host.hostname}`,
        );
    }
    for (const pci of s.pciDevices ?? []) {
      if (!(host.pciAssignable ?? []).includes(pci))
        throw new HypervisorError("InvalidConfig", `PCI device ${pci} is not assignable on ${host.hostname}`);
    }
    if ((s.maxVcpus ?? s.vcpus) > host.cpus * 8)
      throw new HypervisorError("InvalidConfig", `${s.maxVcpus ?? s.vcpus} vCPUs exceed what ${host.hostname} allows`);
    const free = this.freeMemoryMiB();
    if (memoryMiB > free)
      throw new HypervisorError("InsufficientMemory", `${memoryMiB} MiB needed, ${free} MiB free on ${host.hostname}`);
    for (const d of this.domains.values()) {
      if (d.uuid === c.uuid)
        throw new HypervisorError("AlreadyExists", `a domain with UUID ${c.uuid} exists on ${host.hostname}`);
      if (d.name === c.name)
        throw new HypervisorError("AlreadyExists", `a domain named ${c.name} exists on ${host.hostname}`);
    }
  }

  async create(config: DomainConfig, opts: { paused?: boolean } = {}): Promise<DomainInfo> {
    await this.gate("create");
    const memoryMiB = quantityMiB(config.spec.memory);
    this.validate(config, memoryMiB);
    const now = Date.now();
    const d: SimDomain = {
      uuid: config.uuid,
      name: config.name,
      domid: this.nextDomid++,
      state: opts.paused ? "paused" : "running",
      config,
      memoryMiB,
      vcpus: config.spec.vcpus,
      cpuBase: 0,
      since: now,
      load: 0.1,
      dirtyPagesPerSec: 2000,
      bootTime: now,
      weight: config.spec.cpu?.weight ?? 256,
      cap: config.spec.cpu?.cap ?? 0,
    };
    this.domains.set(d.uuid, d);
    this.persist();
    this.emit({ type: "state", uuid: d.uuid, name: d.name, state: d.state, reason: "create" });
    return this.info(d);
  }

  async shutdown(uuid: string, timeoutMs: number): Promise<"shutdown" | "destroyed"> {
    await this.gate("shutdown");
    const d = this.get(uuid);
    if (this.faults.ignoreShutdown?.includes(uuid) || d.state === "paused" || d.state === "crashed") {
      await sleep(Math.min(timeoutMs, 5000 * this.opts.timeScale + timeoutMs * this.opts.timeScale));
      await this.destroy(uuid);
      return "destroyed";
    }
    this.domains.delete(uuid);
    this.persist();
    this.emit({ type: "gone", uuid, name: d.name });
    return "shutdown";
  }

  async destroy(uuid: string): Promise<void> {
    await this.gate("destroy");
    const d = this.get(uuid);
    this.domains.delete(uuid);
    this.persist();
    this.emit({ type: "gone", uuid, name: d.name });
  }

  private setState(d: SimDomain, state: HypervisorState): void {
    this.accrue(d);
    d.state = state;
    this.persist();
    this.emit({ type: "state", uuid: d.uuid, name: d.name, state });
  }

  async pause(uuid: string): Promise<void> {
    await this.gate("pause");
    const d = this.get(uuid);
    if (d.state === "crashed") throw new HypervisorError("Failed", `domain ${d.name} has crashed and cannot be paused`);
    this.setState(d, "paused");
  }

  async unpause(uuid: string): Promise<void> {
    await this.gate("unpause");
    const d = this.get(uuid);
    if (d.state === "crashed")
      throw new HypervisorError("Failed", `domain ${d.name} has crashed and cannot be unpaused`);
    this.setState(d, "running");
  }

  async reboot(uuid: string): Promise<void> {
    await this.gate("reboot");
    this.get(uuid);
    this.guestEvent(uuid, "reboot");
  }

  async save(uuid: string, path: string): Promise<void> {
    await this.gate("save");
    const d = this.get(uuid);
    this.accrue(d);
    this.images.set(path, { domain: { ...d } });
    this.domains.delete(uuid);
    this.persist();
    this.emit({ type: "gone", uuid, name: d.name });
  }

  async restore(path: string, opts: { paused?: boolean } = {}): Promise<DomainInfo> {
    await this.gate("restore");
    const img = this.images.get(path);
    if (!img) throw new HypervisorError("MissingFile", `no saved image at ${path} on ${this.opts.hostname}`);
    const free = this.freeMemoryMiB();
    if (img.domain.memoryMiB > free)
      throw new HypervisorError(
        "InsufficientMemory",
        `${img.domain.memoryMiB} MiB needed, ${free} MiB free on ${this.opts.hostname}`,
      );
    if (this.domains.has(img.domain.uuid))
      throw new HypervisorError("AlreadyExists", `a domain with UUID ${img.domain.uuid} exists`);
    const d: SimDomain = {
      ...img.domain,
      domid: this.nextDomid++,
      state: opts.paused ? "paused" : "running",
      since: Date.now(),
    };
    this.domains.set(d.uuid, d);
    this.images.delete(path);
    this.persist();
    this.emit({ type: "state", uuid: d.uuid, name: d.name, state: d.state, reason: "restore" });
    return this.info(d);
  }

  async setMemory(uuid: string, mib: number): Promise<void> {
    await this.gate("setMemory");
    const d = this.get(uuid);
    const max = quantityMiB(d.config.spec.maxMemory ?? d.config.spec.memory);
    if (mib > max)
      throw new HypervisorError("InvalidConfig", `${mib} MiB exceeds the domain's maxMemory of ${max} MiB`);
    if (mib - d.memoryMiB > this.freeMemoryMiB())
      throw new HypervisorError(
        "InsufficientMemory",
        `${mib - d.memoryMiB} MiB more needed, ${this.freeMemoryMiB()} MiB free`,
      );
    d.memoryMiB = mib;
    this.persist();
  }

  async setVcpus(uuid: string, vcpus: number): Promise<void> {
    await this.gate("setVcpus");
    const d = this.get(uuid);
    const max = d.config.spec.maxVcpus ?? d.config.spec.vcpus;
    if (vcpus < 1 || vcpus > max)
      throw new HypervisorError("InvalidConfig", `vcpus ${vcpus} outside 1..${max} (maxVcpus)`);
    this.accrue(d);
    d.vcpus = vcpus;
    this.persist();
  }

  async setCredit2(uuid: string, p: { weight: number; cap: number }): Promise<void> {
    await this.gate("setCredit2");
    const d = this.get(uuid);
    d.weight = p.weight;
    d.cap = p.cap;
    this.persist();
  }

  async consoleLog(uuid: string, maxBytes = 64 * 1024): Promise<string> {
    await this.gate("consoleLog");
    const d = this.get(uuid);
    const up = Math.floor((Date.now() - d.bootTime) / 1000);
    const lines = [`Booting ${d.config.spec.type} guest ${d.name}`];
    for (let i = Math.max(0, up - 200); i <= up; i++) lines.push(`kubexen-sim counter ${i}`);
    const text = `${lines.join("\n")}\n`;
    return text.length > maxBytes ? text.slice(-maxBytes) : text;
  }

  watch(onEvent: (e: HypervisorEvent) => void): () => void {
    this.listeners.add(onEvent);
    return () => this.listeners.delete(onEvent);
  }

  private emit(e: HypervisorEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // A listener's failure is its own.
      }
    }
  }

  async close(): Promise<void> {
    this.listeners.clear();
    clearTimeout(this.watchdogTimer);
  }

  // ---- live migration ----

  private takeFault(side: "send" | "receive", phase: MigrationFaultPhase): boolean {
    const f = this.faults.migration;
    if (f && f.side === side && f.phase === phase) {
      this.faults.migration = undefined;
      return true;
    }
    return false;
  }

  async migrateSend(uuid: string, transport: Duplex, opts: MigrateSendOptions = {}): Promise<MigrationStats> {
    await this.gate("migrateSend");
    const d = this.get(uuid);
    const type = d.config.spec.type;
    if (type === "pv" && !this.opts.shadow)
      throw new HypervisorError(
        "NotMigratable",
        `pv guests cannot live-migrate from ${this.opts.hostname}: Xen was built without shadow paging`,
      );
    if (d.config.spec.pciDevices?.length)
      throw new HypervisorError("NotMigratable", `domain ${d.name} has PCI passthrough devices`);
    if (d.state !== "running" && d.state !== "blocked")
      throw new HypervisorError("NotMigratable", `domain ${d.name} is ${d.state}, not running`);
    const reader = new FrameReader(transport);
    const t0 = Date.now();
    const linkBps = Math.min(this.opts.linkMiBps, opts.bandwidthMiBps || Number.POSITIVE_INFINITY) * 2 ** 20;
    const plan = planPrecopy({
      memoryBytes: d.memoryMiB * 2 ** 20,
      bandwidthBps: linkBps,
      dirtyPagesPerSec: d.dirtyPagesPerSec * Math.max(0.05, d.load),
      autoConverge: opts.autoConverge,
    });
    const fail = (phase: string, err: unknown) => {
      transport.destroy();
      return new MigrationError(phase, err instanceof Error ? err.message : String(err), false, err);
    };
    // Prepare: announce the domain; the target checks it has room.
    try {
      if (this.takeFault("send", "prepare")) throw new Error("injected fault");
      this.accrue(d);
      await writeFrame(transport, "H", { domain: { ...d, state: "paused", migration: "incoming" } });
      await reader.expect("A");
    } catch (err) {
      throw fail("prepare", err);
    }
    // Pre-copy rounds while the guest runs.
    let bytesSent = 0;
    try {
      for (const [i, round] of plan.rounds.entries()) {
        if (opts.signal?.aborted) throw new Error("aborted");
        await this.sendRound(transport, round.pages, round.seconds, opts.signal);
        if (this.takeFault("send", "precopy")) throw new Error("injected fault");
        bytesSent += round.pages * PAGE_BYTES;
        opts.onProgress?.({
          round: i + 1,
          bytesSent,
          dirtyPages: plan.rounds[i + 1]?.pages ?? plan.final.pages,
          throttle: plan.rounds[i + 1]?.throttle ?? plan.final.throttle,
        });
      }
    } catch (err) {
      throw fail("precopy", err);
    }
    // Stop-and-copy: the guest is paused here from now on.
    this.setState(d, "paused");
    try {
      if (opts.signal?.aborted) throw new Error("aborted");
      if (this.takeFault("send", "stopcopy")) throw new Error("injected fault");
      await this.sendRound(transport, plan.final.pages, plan.final.seconds + 0.03, opts.signal);
      await writeFrame(transport, "S", { rounds: plan.rounds.length + 1 });
      await reader.expect("Y");
    } catch (err) {
      this.setState(d, "running");
      throw fail("stopcopy", err);
    }
    // Handover: from the moment we say go, the target may run the domain.
    d.migration = "migratedaway";
    this.persist();
    let done: { ok: boolean; error?: string };
    try {
      if (this.takeFault("send", "handover")) throw new Error("injected fault: link lost after go");
      await writeFrame(transport, "G", {});
      if (this.takeFault("send", "confirm")) throw new Error("injected fault: link lost before the target confirmed");
      done = await reader.expect<{ ok: boolean; error?: string }>("D");
    } catch (err) {
      transport.destroy();
      // We cannot know whether the target runs it: keep our copy paused, never resume it.
      throw new MigrationError(
        "handover",
        `${err instanceof Error ? err.message : err}; the domain stays paused here as ${d.name}--migratedaway`,
        true,
        err,
      );
    }
    if (!done.ok) {
      d.migration = undefined;
      this.setState(d, "running");
      transport.destroy();
      throw new MigrationError("resume", `target could not start the domain (${done.error}); resumed here`);
    }
    this.domains.delete(uuid);
    this.persist();
    this.emit({ type: "gone", uuid, name: d.name });
    transport.end();
    return {
      bytes: plan.bytes,
      rounds: plan.rounds.length + 1,
      downtimeMs: plan.downtimeMs,
      totalMs: Math.max(plan.totalMs, Date.now() - t0),
      throttle: plan.final.throttle,
    };
  }

  async resumeMigratedAway(uuid: string): Promise<DomainInfo> {
    await this.gate("unpause");
    const d = this.get(uuid);
    if (d.migration !== "migratedaway")
      throw new HypervisorError("Failed", `domain ${d.name} is not a --migratedaway copy`);
    d.migration = undefined;
    this.setState(d, "running");
    return this.info(d);
  }

  /** Sends one round's (scaled) bytes and takes its modelled time; an abort stops it within one chunk or 100 ms. */
  private async sendRound(transport: Duplex, pages: number, modelSeconds: number, signal?: AbortSignal): Promise<void> {
    const start = Date.now();
    let wire = Math.max(1, Math.round(pages * PAGE_BYTES * this.opts.wireScale));
    const chunk = Buffer.alloc(Math.min(wire, 64 * 1024), 0xa5);
    while (wire > 0) {
      if (signal?.aborted) throw new Error("aborted");
      const n = Math.min(wire, chunk.length);
      await writeFrame(transport, "P", n === chunk.length ? chunk : chunk.subarray(0, n));
      wire -= n;
    }
    await writeFrame(transport, "R", { pages });
    const end = start + modelSeconds * 1000 * this.opts.timeScale;
    while (Date.now() < end) {
      if (signal?.aborted) throw new Error("aborted");
      await sleep(Math.min(100, end - Date.now()));
    }
  }

  async migrateReceive(transport: Duplex, opts: MigrateReceiveOptions = {}): Promise<DomainInfo> {
    await this.gate("migrateReceive");
    const reader = new FrameReader(transport);
    const refuse = async (phase: string, err: unknown): Promise<never> => {
      const msg = err instanceof Error ? err.message : String(err);
      await writeFrame(transport, "X", { error: msg }).catch(() => {});
      transport.destroy();
      throw new MigrationError(phase, msg, false, err);
    };
    let hello: { domain: SimDomain };
    try {
      hello = await reader.expect<{ domain: SimDomain }>("H");
    } catch (err) {
      return refuse("prepare", err);
    }
    const incoming = hello.domain;
    opts.onAnnounce?.({ uuid: incoming.uuid, name: incoming.name, memoryMiB: incoming.memoryMiB });
    try {
      if (this.takeFault("receive", "prepare")) throw new Error("injected fault");
      const type = incoming.config.spec.type;
      if (type !== "pv" && !this.opts.hap)
        throw new Error(`${type} guests need HAP, which ${this.opts.hostname} lacks`);
      const free = this.freeMemoryMiB();
      if (incoming.memoryMiB > free)
        throw new Error(`${incoming.memoryMiB} MiB needed, ${free} MiB free on ${this.opts.hostname}`);
      if (this.domains.has(incoming.uuid))
        throw new Error(`domain ${incoming.uuid} already exists on ${this.opts.hostname}`);
    } catch (err) {
      return refuse("prepare", err);
    }
    // The incoming copy holds its memory from the start, paused, named --incoming.
    const d: SimDomain = {
      ...incoming,
      domid: this.nextDomid++,
      state: "paused",
      migration: "incoming",
      since: Date.now(),
    };
    this.domains.set(d.uuid, d);
    this.persist();
    const discard = () => {
      if (this.domains.get(d.uuid) === d) {
        this.domains.delete(d.uuid);
        this.persist();
      }
    };
    try {
      await writeFrame(transport, "A", {});
      for (;;) {
        const f = await reader.next();
        if (f.type === "P" || f.type === "R") {
          if (f.type === "R" && this.takeFault("receive", "precopy")) throw new Error("injected fault");
          continue;
        }
        if (f.type === "S") break;
        if (f.type === "X") throw new Error(`sender failed: ${f.payload.toString()}`);
        throw new Error(`unexpected ${f.type} frame during transfer`);
      }
      if (this.takeFault("receive", "stopcopy")) throw new Error("injected fault");
      await writeFrame(transport, "Y", {});
      await reader.expect("G");
    } catch (err) {
      discard();
      transport.destroy();
      throw new MigrationError("transfer", err instanceof Error ? err.message : String(err), false, err);
    }
    // Told to go: the domain is ours.
    if (this.takeFault("receive", "resume")) {
      discard();
      await writeFrame(transport, "D", { ok: false, error: "injected fault: could not unpause" }).catch(() => {});
      transport.end();
      throw new MigrationError("resume", "could not unpause the received domain");
    }
    d.migration = undefined;
    this.setState(d, "running");
    await writeFrame(transport, "D", { ok: true }).catch(() => {});
    transport.end();
    return this.info(d);
  }

  // ---- persistence ----

  private persist(): void {
    if (!this.statePath) return;
    const state: State = {
      nextDomid: this.nextDomid,
      domains: [...this.domains.values()],
      images: Object.fromEntries(this.images),
    };
    const tmp = `${this.statePath}.tmp`;
    writeFileSync(tmp, JSON.stringify(state));
    renameSync(tmp, this.statePath);
  }

  private load(): void {
    if (!this.statePath) return;
    let state: State;
    try {
      state = JSON.parse(readFileSync(this.statePath, "utf8")) as State;
    } catch {
      return;
    }
    this.nextDomid = state.nextDomid;
    this.watchdogDeadline = state.watchdogDeadline;
    this.domains = new Map(state.domains.map((d) => [d.uuid, d]));
    this.images = new Map(Object.entries(state.images));
    // The watchdog expired while nothing fed it (the agent was dead): the host has reset.
    this.checkWatchdog();
  }
}
