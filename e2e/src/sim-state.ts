// The sim hosts' own view when their agents run as processes (and are
// SIGKILLed): each sim persists its domains in <state dir>/<host>.json,
// rewritten atomically on every change. The recorder reads them all on each
// change (inotify, and a poll as a fallback) and checks what OverlapRecorder
// checks in-process: no domain (by UUID) running on two hosts at once, paused
// --incoming copies excluded; and how many times each guest booted.
import { type FSWatcher, readFileSync, watch } from "node:fs";
import { dirname } from "node:path";

/** What the recorder reads of one domain in a sim's state file. */
export interface SimDomainView {
  uuid: string;
  name: string;
  state: string;
  migration?: "incoming" | "migratedaway";
  /** Set when the guest is created; a live migration carries it over, a restart elsewhere sets a new one. */
  bootTime: number;
}

/** host -> its domains, as one consistent snapshot of every host. */
export type FleetView = Map<string, SimDomainView[]>;

/** Whether this copy runs guest code: running or blocked, and not a paused --incoming copy. */
export const runsGuest = (d: SimDomainView) =>
  (d.state === "running" || d.state === "blocked") && d.migration !== "incoming";

/** UUID -> the hosts where it runs, for UUIDs running on two or more. Pure. */
export function runningTwice(view: FleetView): Map<string, string[]> {
  const where = new Map<string, string[]>();
  for (const [host, domains] of view)
    for (const d of domains) if (runsGuest(d)) where.set(d.uuid, [...(where.get(d.uuid) ?? []), host]);
  return new Map([...where].filter(([, hosts]) => hosts.length > 1));
}

/** A state file's domains ([] before the sim first wrote it). */
export function parseSimState(text: string | undefined): SimDomainView[] {
  if (!text) return [];
  const s = JSON.parse(text) as { domains?: SimDomainView[] };
  return (s.domains ?? []).map(({ uuid, name, state, migration, bootTime }) => ({
    uuid,
    name,
    state,
    migration,
    bootTime,
  }));
}

const readOrUndefined = (file: string) => {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
};

export class SimStateRecorder {
  readonly overlaps: string[] = [];
  /** UUID -> the distinct boot times seen: more than one is a restart, never a live migration. */
  readonly bootTimes = new Map<string, Set<number>>();
  /** Consistent snapshots checked. */
  snapshots = 0;
  /** Checks given up because files kept changing between two reads (each retried on the next change). */
  torn = 0;
  private last: FleetView = new Map();
  /** UUIDs running twice in the last snapshot: an overlap is recorded once, when it begins. */
  private twice = new Set<string>();
  private readonly watchers: FSWatcher[] = [];
  private readonly timer: NodeJS.Timeout;
  private checking = false;
  private dirty = false;

  /** `files`: host -> its sim's state file. */
  private readonly files: Map<string, string>;

  constructor(files: Map<string, string>, pollMs = 100) {
    this.files = files;
    for (const dir of new Set([...files.values()].map((f) => dirname(f))))
      this.watchers.push(watch(dir, { persistent: false }, () => this.check()));
    this.timer = setInterval(() => this.check(), pollMs);
    this.timer.unref();
    this.check();
  }

  /** The last consistent snapshot. */
  get view(): FleetView {
    return this.last;
  }

  /** UUID -> boots seen. */
  boots(uuid: string): number {
    return this.bootTimes.get(uuid)?.size ?? 0;
  }

  /**
   * Reads every file twice: where both reads agree for every file, each held that content
   * over an interval containing the instant between the two passes, so the snapshot is exact.
   */
  snapshot(): FleetView | undefined {
    const hosts = [...this.files.keys()];
    const read = () => hosts.map((h) => readOrUndefined(this.files.get(h) ?? ""));
    for (let attempt = 0; attempt < 5; attempt++) {
      const a = read();
      const b = read();
      if (a.every((x, i) => x === b[i])) {
        try {
          return new Map(hosts.map((h, i) => [h, parseSimState(a[i])]));
        } catch {
          // A file written by other means than the sim's rename: read again.
        }
      }
    }
    this.torn++;
    return undefined;
  }

  /** Takes a snapshot now and records what it shows. */
  check(): void {
    if (this.checking) {
      this.dirty = true;
      return;
    }
    this.checking = true;
    try {
      do {
        this.dirty = false;
        const view = this.snapshot();
        if (!view) continue;
        this.snapshots++;
        this.last = view;
        for (const domains of view.values())
          for (const d of domains) {
            const seen = this.bootTimes.get(d.uuid) ?? new Set<number>();
            seen.add(d.bootTime);
            this.bootTimes.set(d.uuid, seen);
          }
        const twice = runningTwice(view);
        for (const [uuid, hosts] of twice)
          if (!this.twice.has(uuid))
            this.overlaps.push(`${uuid} runs on ${hosts.join(" and ")} at ${new Date().toISOString()}`);
        this.twice = new Set(twice.keys());
      } while (this.dirty);
    } finally {
      this.checking = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
    for (const w of this.watchers) w.close();
    this.check();
  }
}
