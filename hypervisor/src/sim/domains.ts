// A sim host's domains and their lifecycle: create (refusing what `xl create`
// would), destroy, pause, save and restore, live changes, guest events and
// CPU time, with memory accounted as Xen does (total less dom0 less every
// domain). The state persists in a file when the host has a state directory,
// so domains outlive the agent process as real domains outlive a dead agent.
// Every call here is synchronous: the driver applies faults and the host's
// availability before it calls in.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { HypervisorState } from "@kubexen/crds";
import { quantityMiB } from "@kubexen/crds";
import { HypervisorError } from "../errors.ts";
import type { DomainConfig, DomainInfo, HypervisorEvent } from "../types.ts";
import type { SimHostConfig } from "./host.ts";

export interface SimDomain {
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

/** CPU seconds a domain accrues: its load times its vCPUs while it runs (or blocks). */
export function accrue(d: SimDomain, now = Date.now()): void {
  if (d.state === "running" || d.state === "blocked") d.cpuBase += ((now - d.since) / 1000) * d.load * d.vcpus;
  d.since = now;
}

export class SimDomains {
  /** The watchdog's deadline as last loaded; the driver keeps it. */
  watchdogDeadline: number | undefined;
  private domains = new Map<string, SimDomain>();
  private images = new Map<string, SavedImage>();
  private nextDomid = 1;
  private readonly listeners = new Set<(e: HypervisorEvent) => void>();
  private readonly c: SimHostConfig;
  private readonly statePath: string | undefined;

  constructor(c: SimHostConfig) {
    this.c = c;
    if (c.stateDir) {
      mkdirSync(c.stateDir, { recursive: true });
      this.statePath = join(c.stateDir, `${c.hostname}.json`);
      this.load();
    }
  }

  // ---- events ----

  watch(onEvent: (e: HypervisorEvent) => void): () => void {
    this.listeners.add(onEvent);
    return () => this.listeners.delete(onEvent);
  }

  unwatchAll(): void {
    this.listeners.clear();
  }

  emit(e: HypervisorEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // A listener's failure is its own.
      }
    }
  }

  // ---- bookkeeping ----

  freeMemoryMiB(): number {
    let used = this.c.dom0MemoryMiB;
    for (const d of this.domains.values()) used += d.memoryMiB;
    return this.c.memoryMiB - used;
  }

  has(uuid: string): boolean {
    return this.domains.has(uuid);
  }

  get(uuid: string): SimDomain {
    const d = this.domains.get(uuid);
    if (!d) throw new HypervisorError("NotFound", `no domain with UUID ${uuid} on ${this.c.hostname}`);
    return d;
  }

  list(): DomainInfo[] {
    return [...this.domains.values()].map((d) => this.info(d));
  }

  find(uuid: string): DomainInfo | undefined {
    const d = this.domains.get(uuid);
    return d && this.info(d);
  }

  info(d: SimDomain): DomainInfo {
    accrue(d);
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

  setState(d: SimDomain, state: HypervisorState): void {
    accrue(d);
    d.state = state;
    this.persist();
    this.emit({ type: "state", uuid: d.uuid, name: d.name, state });
  }

  /** Takes in a domain that arrives (paused, held for an incoming migration), with a new domid. */
  admit(d: Omit<SimDomain, "domid">): SimDomain {
    const x: SimDomain = { ...d, domid: this.nextDomid++ };
    this.domains.set(x.uuid, x);
    this.persist();
    return x;
  }

  /** Drops a domain without a word, if it is still this one (an incoming copy given up). */
  discard(d: SimDomain): void {
    if (this.domains.get(d.uuid) === d) {
      this.domains.delete(d.uuid);
      this.persist();
    }
  }

  /** The domain is gone (destroyed, shut down, migrated away). */
  remove(d: SimDomain): void {
    this.domains.delete(d.uuid);
    this.persist();
    this.emit({ type: "gone", uuid: d.uuid, name: d.name });
  }

  /** The host died: every domain is gone. */
  wipe(): void {
    const lost = [...this.domains.values()];
    this.domains.clear();
    this.persist();
    for (const d of lost) this.emit({ type: "gone", uuid: d.uuid, name: d.name });
  }

  // ---- lifecycle ----

  create(config: DomainConfig, paused: boolean): DomainInfo {
    const memoryMiB = quantityMiB(config.spec.memory);
    this.validate(config, memoryMiB);
    const now = Date.now();
    const d: SimDomain = {
      uuid: config.uuid,
      name: config.name,
      domid: this.nextDomid++,
      state: paused ? "paused" : "running",
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

  /** Whether the guest would act on a clean shutdown request (paused and crashed guests cannot). */
  answersShutdown(d: SimDomain): boolean {
    return d.state !== "paused" && d.state !== "crashed";
  }

  pause(uuid: string): void {
    const d = this.get(uuid);
    if (d.state === "crashed") throw new HypervisorError("Failed", `domain ${d.name} has crashed and cannot be paused`);
    this.setState(d, "paused");
  }

  unpause(uuid: string): void {
    const d = this.get(uuid);
    if (d.state === "crashed")
      throw new HypervisorError("Failed", `domain ${d.name} has crashed and cannot be unpaused`);
    this.setState(d, "running");
  }

  save(uuid: string, path: string): void {
    const d = this.get(uuid);
    accrue(d);
    this.images.set(path, { domain: { ...d } });
    this.remove(d);
  }

  restore(path: string, paused: boolean): DomainInfo {
    const img = this.images.get(path);
    if (!img) throw new HypervisorError("MissingFile", `no saved image at ${path} on ${this.c.hostname}`);
    const free = this.freeMemoryMiB();
    if (img.domain.memoryMiB > free)
      throw new HypervisorError(
        "InsufficientMemory",
        `${img.domain.memoryMiB} MiB needed, ${free} MiB free on ${this.c.hostname}`,
      );
    if (this.domains.has(img.domain.uuid))
      throw new HypervisorError("AlreadyExists", `a domain with UUID ${img.domain.uuid} exists`);
    const d: SimDomain = {
      ...img.domain,
      domid: this.nextDomid++,
      state: paused ? "paused" : "running",
      since: Date.now(),
    };
    this.domains.set(d.uuid, d);
    this.images.delete(path);
    this.persist();
    this.emit({ type: "state", uuid: d.uuid, name: d.name, state: d.state, reason: "restore" });
    return this.info(d);
  }

  setMemory(uuid: string, mib: number): void {
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

  setVcpus(uuid: string, vcpus: number): void {
    const d = this.get(uuid);
    const max = d.config.spec.maxVcpus ?? d.config.spec.vcpus;
    if (vcpus < 1 || vcpus > max)
      throw new HypervisorError("InvalidConfig", `vcpus ${vcpus} outside 1..${max} (maxVcpus)`);
    accrue(d);
    d.vcpus = vcpus;
    this.persist();
  }

  setCredit2(uuid: string, p: { weight: number; cap: number }): void {
    const d = this.get(uuid);
    d.weight = p.weight;
    d.cap = p.cap;
    this.persist();
  }

  consoleLog(uuid: string, maxBytes: number): string {
    const d = this.get(uuid);
    const up = Math.floor((Date.now() - d.bootTime) / 1000);
    const lines = [`Booting ${d.config.spec.type} guest ${d.name}`];
    for (let i = Math.max(0, up - 200); i <= up; i++) lines.push(`kubexen-sim counter ${i}`);
    const text = `${lines.join("\n")}\n`;
    return text.length > maxBytes ? text.slice(-maxBytes) : text;
  }

  /** Something happens inside a guest: it crashes, powers off or reboots itself. */
  guestEvent(uuid: string, what: "crash" | "poweroff" | "reboot"): void {
    const d = this.domains.get(uuid);
    if (!d) throw new HypervisorError("NotFound", `no domain ${uuid} on ${this.c.hostname}`);
    accrue(d);
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
    if (!d) throw new HypervisorError("NotFound", `no domain ${uuid} on ${this.c.hostname}`);
    accrue(d);
    if (w.load !== undefined) d.load = Math.max(0, Math.min(1, w.load));
    if (w.dirtyPagesPerSec !== undefined) d.dirtyPagesPerSec = Math.max(0, w.dirtyPagesPerSec);
    this.persist();
  }

  /** Checks what `xl create` would refuse, before anything is made. */
  private validate(c: DomainConfig, memoryMiB: number): void {
    const s = c.spec;
    const host = this.c;
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

  private fileExists(path: string): boolean {
    return !this.c.files || this.c.files.includes(path);
  }

  // ---- persistence ----

  persist(): void {
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
  }
}
