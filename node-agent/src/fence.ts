// Self-fencing. The agent feeds a watchdog only while its heartbeat Lease
// renews; once it has not renewed for `timeoutMs`, it stops feeding and the
// host resets when the watchdog expires, destroying every domain on it. The
// operator restarts a NotReady host's domains elsewhere only after the
// lease has been expired for longer than timeoutMs + watchdog timeout +
// margin, so by then the old copies are gone. A killed agent stops feeding
// too: the watchdog is owned by the agent's process.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, writeSync } from "node:fs";
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
 * Xen's watchdog through xenwatchdogd, run as a child that dies with the
 * agent (PDEATHSIG): killed with SIGKILL it leaves its slot armed, so the host
 * resets; SIGTERM makes it disarm.
 */
export class XenWatchdog implements Watchdog {
  readonly kind = "xen";
  private child: ChildProcess | undefined;
  private readonly bin: string;
  private readonly log: Logger;
  constructor(log: Logger, bin = "xenwatchdogd") {
    this.bin = bin;
    this.log = log;
  }
  start(timeoutMs: number): void {
    const timeout = String(Math.max(2, Math.ceil(timeoutMs / 1000)));
    const sleep = String(Math.max(1, Math.floor(Number(timeout) / 3)));
    this.child = spawn("setpriv", ["--pdeathsig", "KILL", "--", this.bin, timeout, sleep], {
      stdio: "ignore",
      detached: false,
    });
    this.child.on("exit", (code, sig) => this.log.warn({ code, sig }, "xenwatchdogd exited"));
  }
  feed(): void {
    // xenwatchdogd feeds itself while it lives.
  }
  starve(): void {
    this.child?.kill("SIGKILL");
  }
  disarm(): void {
    this.child?.kill("SIGTERM");
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
  constructor(o: FencerOptions) {
    this.o = o;
  }
  get isFenced(): boolean {
    return this.fenced;
  }
  start(): void {
    this.lastRenew = Date.now();
    this.o.watchdog.start(this.o.watchdogTimeoutMs);
    this.timer = setInterval(() => this.tick(), Math.max(100, Math.min(1000, this.o.watchdogTimeoutMs / 4)));
    this.timer.unref();
  }
  /** The heartbeat Lease was renewed. */
  renewed(at = Date.now()): void {
    this.lastRenew = at;
  }
  private tick(): void {
    if (this.fenced) return;
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
