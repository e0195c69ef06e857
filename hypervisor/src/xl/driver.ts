// The xl driver: the Hypervisor interface on a real Xen host's toolstack.
// Domains are addressed by UUID (names carry migration suffixes and domids
// change); every call has a timeout; `xl shutdown` is polled rather than
// waited with -w, which never times out; memory is always given with a unit.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { autoConvergeThrottle, throttleCap } from "../autoconverge.ts";
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
import { coalesced } from "./coalesce.ts";
import { emitXlConfig, toXlConfig } from "./config.ts";
import { type DomainWatch, watchDomains } from "./domain-watch.ts";
import { downtimeMs } from "./downtime.ts";
import { type XlRunner, xlRunner } from "./exec.ts";
import { DEFAULT_PACE, nextLookAt, restAfter } from "./pace.ts";
import { capabilities, parseDom0, parseMigrateLine, parseXlListLong, parseXlListVerbose, xlInfo } from "./parse.ts";
import { type DomainScope, domainScope, type ScopedVerb, scopedCommand } from "./scope.ts";

export interface XlDriverOptions {
  /** Where generated xl.cfg files and migration sockets live. */
  workDir?: string;
  xl?: XlRunner;
  xlBin?: string;
  /** Console logs written by xenconsoled (XENCONSOLED_TRACE=guest). */
  consoleLogDir?: string;
  /** Between looks at the domains for watch(), when xenstored's domain watches are not running. */
  pollMs?: number;
  /** Between looks while they run: they miss only pauses and unpauses (pace.ts). */
  resyncMs?: number;
  /** The program that watches xenstore (domain-watch.ts); false to poll only. */
  xenstoreWatchBin?: string | false;
  /**
   * Start the processes that must outlive the agent (domain monitors, device models) in a
   * transient systemd scope per domain (scope.ts). Default: when systemd is PID 1.
   */
  domainScopes?: boolean;
}

/** sd_booted(3): systemd is the init system when this directory exists. */
export const systemdBooted = (dir = "/run/systemd/system") => existsSync(dir);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class XlHypervisor implements Hypervisor {
  readonly kind = "xl" as const;
  private readonly xl: XlRunner;
  private readonly o: Required<Omit<XlDriverOptions, "xl">>;
  private scopeCount = 0;
  private migrationsInFlight = 0;
  private listeners = new Set<(e: HypervisorEvent) => void>();
  /** The looks at the domains that watch() reports from, paced by pace.ts. */
  private looks = {
    timer: undefined as NodeJS.Timeout | undefined,
    at: Number.POSITIVE_INFINITY,
    running: false,
    lastEndMs: 0,
    lastCostMs: 0,
    rang: false,
  };
  private domainWatch: { watch: DomainWatch; up: boolean; startedAt: number } | undefined;
  private last = new Map<string, DomainInfo>();
  /** Guest types this host live-migrates: from virt_caps, fixed at boot, so read once. */
  private migratable: Promise<string[]> | undefined;
  /** Assignable PCI devices change only when an administrator assigns one: read once a minute. */
  private assignable: { at: number; devices: Promise<string[]> } | undefined;
  /** dom0's size, from its row in the last `xl list -v`: the host report needs no `xl list 0` of its own. */
  private dom0Size: { memoryMiB: number; vcpus: number } | undefined;
  /** `xl list -v`, one at a time, shared by the callers that arrive while one runs (coalesce.ts). */
  private readonly readDomains = coalesced(async () => {
    const { stdout } = await this.xl(["list", "-v"], { timeoutMs: 15_000 });
    this.dom0Size = parseDom0(stdout) ?? this.dom0Size;
    return parseXlListVerbose(stdout);
  });

  constructor(o: XlDriverOptions = {}) {
    this.o = {
      workDir: "/var/lib/kubexen/xl",
      xlBin: "xl",
      consoleLogDir: "/var/log/xen/console",
      pollMs: DEFAULT_PACE.pollMs,
      resyncMs: DEFAULT_PACE.resyncMs,
      xenstoreWatchBin: "xenstore-watch",
      ...o,
      domainScopes: o.domainScopes ?? systemdBooted(),
    };
    this.xl = o.xl ?? xlRunner(this.o.xlBin);
  }

  async hostInfo(): Promise<HostInfo> {
    const [info, pciAssignable] = await Promise.all([
      this.xl(["info"], { timeoutMs: 15_000 }),
      this.pciAssignable(),
      this.dom0Size ? undefined : this.readDomains(),
    ]);
    const i = xlInfo(info.stdout);
    const caps = capabilities(i.virtCaps);
    const d0 = this.dom0Size ?? { memoryMiB: 0, vcpus: 0 };
    return {
      hostname: i.hostname,
      xenVersion: i.xenVersion,
      cpus: i.cpus,
      numaNodes: i.numaNodes,
      cpuMhz: i.cpuMhz,
      totalMemoryMiB: i.totalMemoryMiB,
      freeMemoryMiB: i.freeMemoryMiB,
      dom0MemoryMiB: d0.memoryMiB,
      dom0Vcpus: d0.vcpus,
      scheduler: i.scheduler,
      ...caps,
      pciAssignable,
    };
  }

  private pciAssignable(): Promise<string[]> {
    const now = Date.now();
    if (this.assignable && now - this.assignable.at < 60_000) return this.assignable.devices;
    const devices = this.xl(["pci-assignable-list"], { timeoutMs: 15_000 }).then(
      ({ stdout }) =>
        stdout
          .split("\n")
          .map((l) => l.trim())
          .filter((l) => /^[0-9a-f]{4}:/.test(l)),
      () => [] as string[],
    );
    this.assignable = { at: now, devices };
    return devices;
  }

  listDomains(): Promise<DomainInfo[]> {
    return this.readDomains();
  }

  async getDomain(uuid: string): Promise<DomainInfo | undefined> {
    return (await this.listDomains()).find((d) => d.uuid === uuid);
  }

  /** `xl info` alone, once (hostInfo reads more; a migration needs only this). */
  private liveMigratable(): Promise<string[]> {
    if (this.migratable) return this.migratable;
    const p = this.xl(["info"], { timeoutMs: 15_000 }).then(
      ({ stdout }) => capabilities(xlInfo(stdout).virtCaps).liveMigratable,
    );
    this.migratable = p;
    // A failed read is tried again by the next migration.
    p.catch(() => {
      if (this.migratable === p) this.migratable = undefined;
    });
    return p;
  }

  /** The scope for an `xl <verb>` of domain `uuid`, when domains get scopes on this host. */
  private scope(verb: ScopedVerb, uuid: string | undefined): DomainScope | undefined {
    if (!this.o.domainScopes) return undefined;
    // Unique per agent run and call: the time in ms, then a counter.
    return domainScope(verb, uuid, `${Date.now().toString(36)}${(this.scopeCount++).toString(36)}`);
  }

  private async domid(uuid: string): Promise<string> {
    const d = await this.getDomain(uuid);
    if (!d) throw new HypervisorError("NotFound", `no domain with UUID ${uuid} on this host`);
    return String(d.domid);
  }

  async create(config: DomainConfig, opts: { paused?: boolean } = {}): Promise<DomainInfo> {
    // xl refuses a second name but not a second UUID (Xen keeps it as an opaque handle): a UUID is
    // our identity for a domain, so a duplicate is refused here, before anything is built.
    const before = await this.listDomains();
    const dup = before.find((d) => d.uuid === config.uuid || d.name === config.name);
    if (dup)
      throw new HypervisorError(
        "AlreadyExists",
        `cannot create ${config.name} (UUID ${config.uuid}): domain ${dup.name} (UUID ${dup.uuid}, domid ${dup.domid}) already has that ${dup.uuid === config.uuid ? "UUID" : "name"} on this host`,
      );
    await mkdir(this.o.workDir, { recursive: true });
    const path = join(this.o.workDir, `${config.uuid}.cfg`);
    await writeFile(path, emitXlConfig(toXlConfig(config)));
    try {
      await this.xl(["create", ...(opts.paused ? ["-p"] : []), path], {
        timeoutMs: 120_000,
        scope: this.scope("create", config.uuid),
      });
    } catch (err) {
      // A failed create can leave a half-built domain: remove it (only one this call built).
      const left = await this.getDomain(config.uuid).catch(() => undefined);
      if (left && !before.some((d) => d.domid === left.domid))
        await this.xl(["destroy", String(left.domid)], { timeoutMs: 30_000 }).catch(() => {});
      throw err;
    }
    const d = await this.getDomain(config.uuid);
    if (!d)
      throw new HypervisorError("Failed", `xl create ${config.name} returned but no domain has UUID ${config.uuid}`);
    return d;
  }

  async shutdown(uuid: string, timeoutMs: number): Promise<"shutdown" | "destroyed"> {
    const id = await this.domid(uuid);
    await this.xl(["shutdown", id], { timeoutMs: 15_000 }).catch(() => {});
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const t = Date.now();
      if (!(await this.getDomain(uuid))) return "shutdown";
      await sleep(restAfter(Math.min(1000, this.o.pollMs), Date.now() - t));
    }
    await this.destroy(uuid);
    return "destroyed";
  }

  async destroy(uuid: string): Promise<void> {
    await this.xl(["destroy", await this.domid(uuid)], { timeoutMs: 60_000 });
  }

  async pause(uuid: string): Promise<void> {
    await this.xl(["pause", await this.domid(uuid)], { timeoutMs: 15_000 });
  }

  async unpause(uuid: string): Promise<void> {
    await this.xl(["unpause", await this.domid(uuid)], { timeoutMs: 15_000 });
  }

  async resumeMigratedAway(uuid: string): Promise<DomainInfo> {
    const d = await this.getDomain(uuid);
    if (!d) throw new HypervisorError("NotFound", `no domain with UUID ${uuid}`);
    if (d.migration !== "migratedaway")
      throw new HypervisorError("Failed", `domain ${d.name} is not a --migratedaway copy`);
    // xl left it paused under "<name>--migratedaway": give the name back, then let it run.
    await this.xl(["rename", String(d.domid), d.name], { timeoutMs: 15_000 });
    await this.xl(["unpause", String(d.domid)], { timeoutMs: 15_000 });
    const after = await this.getDomain(uuid);
    if (!after) throw new HypervisorError("Failed", `domain ${d.name} vanished while being resumed`);
    return after;
  }

  async reboot(uuid: string): Promise<void> {
    await this.xl(["reboot", await this.domid(uuid)], { timeoutMs: 15_000 });
  }

  async save(uuid: string, path: string): Promise<void> {
    await this.xl(["save", await this.domid(uuid), path], { timeoutMs: 600_000 });
  }

  async restore(path: string, opts: { paused?: boolean; uuid?: string } = {}): Promise<DomainInfo> {
    const before = new Set((await this.listDomains()).map((d) => d.domid));
    await this.xl(["restore", ...(opts.paused ? ["-p"] : []), path], {
      timeoutMs: 600_000,
      scope: this.scope("restore", opts.uuid),
    });
    const d = (await this.listDomains()).find((x) => !before.has(x.domid));
    if (!d) throw new HypervisorError("Failed", `xl restore ${path} returned but no new domain appeared`);
    return d;
  }

  async setMemory(uuid: string, mib: number): Promise<void> {
    // Without a unit xl reads MiB in code but documents KiB: always say "m".
    await this.xl(["mem-set", await this.domid(uuid), `${Math.round(mib)}m`], { timeoutMs: 30_000 });
  }

  async setVcpus(uuid: string, vcpus: number): Promise<void> {
    // --ignore-host: xl refuses more vCPUs than the host has CPUs here, though `xl create` does
    // not; the operator placed the domain with its maxVcpus, so this is its decision, not xl's.
    await this.xl(["vcpu-set", "--ignore-host", await this.domid(uuid), String(vcpus)], { timeoutMs: 30_000 });
  }

  async setCredit2(uuid: string, p: { weight: number; cap: number }): Promise<void> {
    await this.xl(["sched-credit2", "-d", await this.domid(uuid), "-w", String(p.weight), "-c", String(p.cap)], {
      timeoutMs: 15_000,
    });
  }

  async consoleLog(uuid: string, maxBytes = 64 * 1024): Promise<string> {
    const d = await this.getDomain(uuid);
    if (!d) throw new HypervisorError("NotFound", `no domain with UUID ${uuid} on this host`);
    const text = await readFile(join(this.o.consoleLogDir, `guest-${d.name}.log`), "utf8").catch(() => "");
    return text.length > maxBytes ? text.slice(-maxBytes) : text;
  }

  watch(onEvent: (e: HypervisorEvent) => void): () => void {
    this.listeners.add(onEvent);
    this.startDomainWatch();
    this.scheduleLook();
    return () => {
      this.listeners.delete(onEvent);
      if (!this.listeners.size) this.stopLooking();
    };
  }

  /** xenstored's domain watches, when the host has them and they are not running. */
  private startDomainWatch(): void {
    const bin = this.o.xenstoreWatchBin;
    if (!bin || this.domainWatch || !this.listeners.size) return;
    const state = {
      up: false,
      startedAt: Date.now(),
      watch: watchDomains(
        bin,
        () => {
          state.up = true;
          this.looks.rang = true;
          this.scheduleLook();
        },
        () => {
          // Back to polling; started again at the next resync.
          state.up = false;
          this.scheduleLook();
        },
      ),
    };
    this.domainWatch = state;
  }

  private stopLooking(): void {
    clearTimeout(this.looks.timer);
    this.looks.timer = undefined;
    this.looks.at = Number.POSITIVE_INFINITY;
    this.domainWatch?.watch.stop();
    this.domainWatch = undefined;
  }

  /** Sets the timer for the next look, unless one is running (it schedules when it ends) or due sooner. */
  private scheduleLook(): void {
    if (!this.listeners.size || this.looks.running) return;
    const at = nextLookAt(
      {
        lastEndMs: this.looks.lastEndMs,
        lastCostMs: this.looks.lastCostMs,
        watching: this.domainWatch?.up ?? false,
        rang: this.looks.rang,
        migrating: this.migrationsInFlight > 0,
      },
      { ...DEFAULT_PACE, pollMs: this.o.pollMs, resyncMs: this.o.resyncMs },
    );
    if (this.looks.timer && at >= this.looks.at) return;
    clearTimeout(this.looks.timer);
    this.looks.at = at;
    this.looks.timer = setTimeout(() => void this.look(), Math.max(0, at - Date.now()));
    this.looks.timer.unref();
  }

  private async look(): Promise<void> {
    this.looks.timer = undefined;
    this.looks.at = Number.POSITIVE_INFINITY;
    // A watch that went down is started again, at most once a resync.
    if (this.domainWatch && !this.domainWatch.up && Date.now() - this.domainWatch.startedAt >= this.o.resyncMs) {
      this.domainWatch.watch.stop();
      this.domainWatch = undefined;
    }
    this.startDomainWatch();
    this.looks.running = true;
    this.looks.rang = false;
    const t = Date.now();
    try {
      this.report(await this.listDomains());
    } catch {
      // Seen again at the next look.
    } finally {
      this.looks.running = false;
      this.looks.lastEndMs = Date.now();
      this.looks.lastCostMs = this.looks.lastEndMs - t;
      this.scheduleLook();
    }
  }

  private report(now: DomainInfo[]): void {
    const seen = new Set<string>();
    for (const d of now) {
      seen.add(d.uuid);
      const prev = this.last.get(d.uuid);
      if (!prev || prev.state !== d.state || prev.domid !== d.domid) {
        const reason = d.state === "crashed" ? "crash" : prev && prev.domid !== d.domid ? "reboot" : undefined;
        for (const l of this.listeners) l({ type: "state", uuid: d.uuid, name: d.name, state: d.state, reason });
      }
      this.last.set(d.uuid, d);
    }
    for (const [uuid, d] of this.last) {
      if (!seen.has(uuid)) {
        this.last.delete(uuid);
        for (const l of this.listeners) l({ type: "gone", uuid, name: d.name });
      }
    }
  }

  async close(): Promise<void> {
    this.stopLooking();
    this.listeners.clear();
  }

  /**
   * `xl migrate -s "" <domid> "<cmd>"` runs <cmd> as the transport: ours is
   * socat connecting to a unix socket that this process bridges to the
   * authenticated stream it was given.
   */
  async migrateSend(uuid: string, transport: Duplex, opts: MigrateSendOptions = {}): Promise<MigrationStats> {
    this.migrationsInFlight++;
    try {
      return await this.sendMigration(uuid, transport, opts);
    } finally {
      this.migrationsInFlight--;
    }
  }

  private async sendMigration(uuid: string, transport: Duplex, opts: MigrateSendOptions): Promise<MigrationStats> {
    const d = await this.getDomain(uuid);
    if (!d) throw new HypervisorError("NotFound", `no domain with UUID ${uuid} on this host`);
    // Refused before xl starts: a pv guest on a Xen without shadow paging fails only once xl has
    // asked it to suspend, and a guest that does not answer then may be left suspended.
    const [liveMigratable, long] = await Promise.all([
      this.liveMigratable(),
      this.xl(["list", "-l", String(d.domid)], { timeoutMs: 15_000 }),
    ]);
    const details = parseXlListLong(long.stdout)[0];
    const type = details?.type;
    if (!type || !liveMigratable.includes(type))
      throw new HypervisorError(
        "NotMigratable",
        `${type ?? "unknown"} guests cannot live-migrate from this host (it live-migrates ${liveMigratable.join(", ") || "none"}): domain ${d.name}`,
      );
    if (d.state !== "running" && d.state !== "blocked")
      throw new HypervisorError("NotMigratable", `domain ${d.name} is ${d.state}, not running`);
    await mkdir(this.o.workDir, { recursive: true });
    const sock = join(this.o.workDir, `migrate-${uuid}.sock`);
    await rm(sock, { force: true });
    // Bytes are counted at the bridge: xl reports per-round page counts only when verbose.
    let sent = 0;
    let round = 0;
    let dirtyPages: number | undefined;
    const server = createServer((conn) => {
      conn.on("data", (c: Buffer) => {
        sent += c.length;
      });
      conn.pipe(transport);
      transport.pipe(conn);
      conn.on("error", () => transport.destroy());
      transport.on("error", () => conn.destroy());
    });
    await new Promise<void>((r) => server.listen(sock, () => r()));
    const t0 = Date.now();
    let suspendedAt: number | undefined;
    let runningAt: number | undefined;
    let permissionAt: number | undefined;
    let outcome: { ok: boolean; resumed?: boolean; message?: string } | undefined;
    let lastLines: string[] = [];
    // Auto-converge: a credit2 cap, tightened as memory is sent again (autoconverge.ts), lifted
    // again if the guest stays here.
    let throttle = 0;
    let capping: Promise<void> = Promise.resolve();
    const ownCap = details?.cap ?? 0;
    const converge = () => {
      if (!opts.autoConverge) return;
      const t = autoConvergeThrottle(d.memoryMiB * 2 ** 20, sent);
      if (t <= throttle) return;
      throttle = t;
      const cap = throttleCap(d.vcpus, t, ownCap);
      capping = capping
        .then(() => this.xl(["sched-credit2", "-d", String(d.domid), "-c", String(cap)], { timeoutMs: 10_000 }))
        .then(() => undefined)
        .catch(() => {});
    };
    const ticker = setInterval(() => {
      converge();
      opts.onProgress?.({ round, bytesSent: sent, dirtyPages, throttle });
    }, 1000);
    // xl does not say when it suspends the guest for the last copy; its state does ("---ss-").
    // Watched only once the first full pass is sent: each xl call costs the emulated or busy dom0
    // CPU the transfer needs.
    // One look at a time, and the pause after each four times as long as it took: on a real host a
    // look takes milliseconds, on a busy emulated dom0 over a second, which the rounds need.
    const firstPass = d.memoryMiB * 2 ** 20;
    let watcher: NodeJS.Timeout | undefined;
    let watching = true;
    const look = (afterMs: number) => {
      if (!watching) return;
      watcher = setTimeout(() => {
        if (sent < firstPass) return look(500);
        const t = Date.now();
        void this.xl(["list", "-v", String(d.domid)], { timeoutMs: 5000 })
          .then(({ stdout }) => {
            const state = parseXlListVerbose(stdout)[0]?.state;
            if (state === "shutdown" || state === "paused") suspendedAt ??= Date.now();
            else if (state === "running" || state === "blocked") runningAt = t;
          })
          .catch(() => {})
          .finally(() => {
            if (suspendedAt === undefined) look(restAfter(500, Date.now() - t));
          });
      }, afterMs);
    };
    look(500);
    try {
      await new Promise<void>((resolve, reject) => {
        const child = spawn(this.o.xlBin, ["migrate", "-s", "", String(d.domid), `socat - UNIX-CONNECT:${sock}`], {
          stdio: ["ignore", "pipe", "pipe"],
        });
        const onAbort = () => child.kill("SIGTERM");
        opts.signal?.addEventListener("abort", onAbort, { once: true });
        const onLine = (line: string) => {
          lastLines = [...lastLines.slice(-9), line];
          const p = parseMigrateLine(line);
          if (!p) return;
          if (p.kind === "progress") {
            round = p.progress.round;
            dirtyPages = p.progress.dirtyPages;
          } else if (p.kind === "suspended") suspendedAt ??= Date.now();
          else if (p.kind === "permission") permissionAt = Date.now();
          else if (p.kind === "success") outcome = { ok: true };
          else outcome = { ok: false, resumed: p.resumed, message: p.message };
        };
        let buf = "";
        const feed = (c: Buffer) => {
          buf += c.toString();
          let i = buf.indexOf("\n");
          while (i >= 0) {
            onLine(buf.slice(0, i));
            buf = buf.slice(i + 1);
            i = buf.indexOf("\n");
          }
        };
        child.stdout.on("data", feed);
        child.stderr.on("data", feed);
        child.on("error", reject);
        child.on("close", (code) => {
          opts.signal?.removeEventListener("abort", onAbort);
          if (buf) onLine(buf);
          if (code === 0 && outcome?.ok !== false) resolve();
          else reject(new Error(`xl migrate exited ${code}: ${lastLines.join(" | ")}`));
        });
      });
    } catch (err) {
      const stillHere = await this.getDomain(uuid).catch(() => undefined);
      const ambiguous =
        outcome?.resumed === false || (permissionAt !== undefined && stillHere?.migration === "migratedaway");
      throw new MigrationError(permissionAt ? "handover" : "transfer", (err as Error).message, ambiguous, err);
    } finally {
      clearInterval(ticker);
      watching = false;
      clearTimeout(watcher);
      server.close();
      await rm(sock, { force: true });
      await capping;
      if (throttle > 0) {
        // Still here (a failed migration resumes the guest): its own cap again.
        const here = await this.getDomain(uuid).catch(() => undefined);
        if (here && here.migration !== "migratedaway")
          await this.xl(["sched-credit2", "-d", String(here.domid), "-c", String(ownCap)], { timeoutMs: 10_000 }).catch(
            () => {},
          );
      }
    }
    const end = Date.now();
    return {
      bytes: sent,
      rounds: round,
      downtimeMs: downtimeMs({
        seenSuspendedMs: suspendedAt,
        seenRunningMs: runningAt,
        permissionMs: permissionAt,
        endMs: end,
      }),
      totalMs: end - t0,
      throttle,
    };
  }

  async migrateReceive(transport: Duplex, opts: MigrateReceiveOptions = {}): Promise<DomainInfo> {
    this.migrationsInFlight++;
    try {
      return await this.receiveMigration(transport, opts);
    } finally {
      this.migrationsInFlight--;
    }
  }

  private async receiveMigration(transport: Duplex, opts: MigrateReceiveOptions): Promise<DomainInfo> {
    // By domid: migrating to this same host, the UUID is already here (the source).
    const before = new Set((await this.listDomains()).map((d) => d.domid));
    let lastLines: string[] = [];
    await new Promise<void>((resolve, reject) => {
      // The receiver ends as the arrived domain's monitor: it goes in the domain's scope.
      const run = scopedCommand(this.o.xlBin, ["migrate-receive"], this.scope("migrate-receive", opts.uuid));
      const child = spawn(run.command, run.args, { stdio: ["pipe", "pipe", "pipe"] });
      transport.pipe(child.stdin);
      child.stdout.pipe(transport, { end: false });
      const onAbort = () => child.kill("SIGTERM");
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      child.stderr.on("data", (c: Buffer) => {
        lastLines = [...lastLines, ...c.toString().split("\n").filter(Boolean)].slice(-10);
      });
      child.stdin.on("error", () => {});
      child.on("error", reject);
      child.on("close", (code) => {
        opts.signal?.removeEventListener("abort", onAbort);
        transport.end();
        if (code === 0) resolve();
        else reject(new MigrationError("transfer", `xl migrate-receive exited ${code}: ${lastLines.join(" | ")}`));
      });
    });
    const d = (await this.listDomains()).find((x) => !before.has(x.domid) && !x.migration);
    if (!d) throw new HypervisorError("Failed", "xl migrate-receive succeeded but no new domain runs here");
    return d;
  }
}
