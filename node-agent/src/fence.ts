// Self-fencing. The agent feeds a watchdog only while its heartbeat Lease
// renews; once it has not renewed for `timeoutMs`, it stops feeding and the
// host resets when the watchdog expires, destroying every domain on it. The
// operator restarts a NotReady host's domains elsewhere only after the
// lease has been expired for longer than timeoutMs + watchdog timeout +
// margin, so by then the old copies are gone. A killed agent stops feeding
// too: the watchdog is owned by the agent's process.
import { spawnSync } from "node:child_process";
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import type { SimHypervisor } from "@kubexen/hypervisor";
import type { Logger } from "@kubexen/sdk";

export interface Watchdog {
  /** Starts feeding; the host resets if feeding stops for `timeoutMs`. */
  start(timeoutMs: number): void;
  feed(): void;
  /** Stops feeding without disarming: the host will reset. */
  starve(): void;
  /** Disarms (clean shutdown of the agent). */
  disarm(): void;
  readonly kind: string;
}

/** The sim host's watchdog. */
export class SimWatchdog implements Watchdog {
  readonly kind = "sim";
  private timeoutMs = 0;
  private starving = false;
  private readonly sim: SimHypervisor;
  constructor(sim: SimHypervisor) {
    this.sim = sim;
  }
  start(timeoutMs: number): void {
    this.timeoutMs = timeoutMs;
    this.sim.feedWatchdog(timeoutMs);
  }
  feed(): void {
    if (!this.starving) this.sim.feedWatchdog(this.timeoutMs);
  }
  starve(): void {
    this.starving = true;
  }
  disarm(): void {
    this.sim.disarmWatchdog();
  }
}

/**
 * Xen's watchdog, through the dom0 kernel's `xen_wdt` driver (the same
 * hypercall xenwatchdogd uses). Not xenwatchdogd itself: it daemonizes, so
 * it outlives a killed agent and would keep feeding a host that must reset.
 * A /dev/watchdog the agent holds open is closed by the kernel when the
 * agent dies, without the magic "V", which leaves Xen's timer armed.
 * The module is (re)loaded with the requested timeout, and the timeout in
 * force is read back: a longer one than published would break the fence
 * window the operator relies on.
 */
export class XenWatchdog implements Watchdog {
  readonly kind = "xen";
  private readonly linux: LinuxWatchdog;
  private readonly sysfs: string;
  private readonly o: { devicePath?: string; sysfsDir?: string; modprobe?: string };
  constructor(o: { devicePath?: string; sysfsDir?: string; modprobe?: string } = {}) {
    this.o = o;
    this.linux = new LinuxWatchdog(o.devicePath ?? "/dev/watchdog0");
    this.sysfs = o.sysfsDir ?? "/sys/class/watchdog/watchdog0";
  }
  private timeoutInForce(): number | undefined {
    try {
      if (readFileSync(`${this.sysfs}/identity`, "utf8").trim() !== "xen_wdt") return undefined;
      return Number(readFileSync(`${this.sysfs}/timeout`, "utf8").trim());
    } catch {
      return undefined;
    }
  }
  start(timeoutMs: number): void {
    const want = Math.max(2, Math.ceil(timeoutMs / 1000));
    if (this.timeoutInForce() !== want) {
      const modprobe = this.o.modprobe ?? "modprobe";
      spawnSync(modprobe, ["-r", "xen_wdt"], { stdio: "ignore" });
      const r = spawnSync(modprobe, ["xen_wdt", `timeout=${want}`], { encoding: "utf8" });
      if (r.status !== 0)
        throw new Error(
          `fencing: modprobe xen_wdt timeout=${want} failed: ${(r.stderr || r.error?.message || "").trim()}`,
        );
    }
    const got = this.timeoutInForce();
    if (got !== want)
      throw new Error(
        `fencing: the Xen watchdog (${this.sysfs}) runs with timeout ${got ?? "unknown"} s, not ${want} s; ` +
          "is another watchdog device first, or is /dev/watchdog held by another process?",
      );
    this.linux.start(timeoutMs);
  }
  feed(): void {
    this.linux.feed();
  }
  starve(): void {
    this.linux.starve();
  }
  disarm(): void {
    this.linux.disarm();
  }
}

/** Linux's /dev/watchdog: a write feeds it; the magic "V" before close disarms it. */
export class LinuxWatchdog implements Watchdog {
  readonly kind = "linux";
  private fd: number | undefined;
  private starving = false;
  private readonly path: string;
  constructor(path = "/dev/watchdog") {
    this.path = path;
  }
  start(_timeoutMs: number): void {
    this.fd = openSync(this.path, "w");
  }
  feed(): void {
    if (this.fd !== undefined && !this.starving) writeSync(this.fd, "k");
  }
  starve(): void {
    this.starving = true;
  }
  disarm(): void {
    if (this.fd === undefined) return;
    writeSync(this.fd, "V");
    closeSync(this.fd);
    this.fd = undefined;
  }
}

export interface FencerOptions {
  /** How long the Lease may go unrenewed before the agent stops feeding. */
  fenceTimeoutMs: number;
  /** The watchdog's own timeout once starved. */
  watchdogTimeoutMs: number;
  watchdog: Watchdog;
  log: Logger;
}

/** Feeds the watchdog while the heartbeat is fresh; starves it once the heartbeat is stale. */
export class Fencer {
  private readonly o: FencerOptions;
  private lastRenew = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private fenced = false;
  private lastTick = 0;
  private intervalMs = 1000;
  constructor(o: FencerOptions) {
    this.o = o;
  }
  get isFenced(): boolean {
    return this.fenced;
  }
  start(): void {
    this.lastRenew = Date.now();
    this.o.watchdog.start(this.o.watchdogTimeoutMs);
    this.lastTick = Date.now();
    this.intervalMs = Math.max(100, Math.min(1000, this.o.watchdogTimeoutMs / 4));
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }
  /** The heartbeat Lease was renewed. */
  renewed(at = Date.now()): void {
    this.lastRenew = at;
  }
  private tick(): void {
    if (this.fenced) return;
    // A late feed means the process (or the whole dom0) was stalled: past the watchdog's timeout
    // the host resets although the Lease is fresh. Say so while it is still a warning.
    const now = Date.now();
    const lateMs = now - this.lastTick - this.intervalMs;
    this.lastTick = now;
    if (lateMs > this.o.watchdogTimeoutMs / 4)
      this.o.log.warn(
        { lateMs, watchdogTimeoutMs: this.o.watchdogTimeoutMs },
        "the watchdog was fed late: the agent's process was stalled",
      );
    if (Date.now() - this.lastRenew > this.o.fenceTimeoutMs) {
      this.fenced = true;
      this.o.log.error(
        { sinceRenewMs: Date.now() - this.lastRenew, watchdog: this.o.watchdog.kind },
        "heartbeat lost for longer than the fence timeout: starving the watchdog, the host will reset",
      );
      this.o.watchdog.starve();
      return;
    }
    this.o.watchdog.feed();
  }
  stop(): void {
    clearInterval(this.timer);
    if (!this.fenced) this.o.watchdog.disarm();
  }
  /** Stops feeding without disarming, as a crashed agent does. */
  abandon(): void {
    clearInterval(this.timer);
  }
}
