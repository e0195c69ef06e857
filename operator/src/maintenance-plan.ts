// Maintenance decisions, pure. Which maintenances may drain now without
// leaving the cluster short of the capacity its domains need; and, for one
// host, what to do with each domain on it by its evictionStrategy: migrate
// live (largest first, under the migration limits), restart elsewhere, or
// block with a reason. The controller (maintenance.ts) carries it out.
import type { EvictionStrategy, RunStrategy } from "@kubexen/crds";
import { rfc3339 } from "@kubexen/sdk";
import { DEFAULT_LIMITS, isFinishedPhase } from "./migration-plan.ts";

export interface MaintenanceView {
  name: string;
  host: string;
  createdMs: number;
  /** Already past the capacity check (Draining, Drained, Blocked). */
  admitted: boolean;
}

export interface CapacityHost {
  name: string;
  ready: boolean;
  memoryMiB: number;
  cpus: number;
}

export interface Demand {
  memoryMiB: number;
  vcpus: number;
}

export type Admission = { admitted: true } | { admitted: false; message: string };

/**
 * Admits maintenances in order (those already draining first, then the
 * oldest): each only if the Ready hosts outside every admitted maintenance,
 * its own included, still hold what the domains need (memory exactly, vCPUs
 * under the overcommit ratio).
 */
export function admitMaintenances(
  maints: MaintenanceView[],
  hosts: CapacityHost[],
  demand: Demand,
  vcpuOvercommit = 4,
): Map<string, Admission> {
  const order = [...maints].sort(
    (a, b) => Number(b.admitted) - Number(a.admitted) || a.createdMs - b.createdMs || a.name.localeCompare(b.name),
  );
  const out = new Map<string, Admission>();
  const away = new Set<string>();
  for (const m of order) {
    const left = hosts.filter((h) => h.ready && !away.has(h.name) && h.name !== m.host);
    const mem = left.reduce((s, h) => s + h.memoryMiB, 0);
    const cpus = left.reduce((s, h) => s + h.cpus, 0) * vcpuOvercommit;
    if (m.admitted || (mem >= demand.memoryMiB && cpus >= demand.vcpus)) {
      out.set(m.name, { admitted: true });
      away.add(m.host);
    } else {
      const holders = [...away].sort().join(", ") || "none";
      out.set(m.name, {
        admitted: false,
        message: `without ${m.host} the cluster would have ${mem} MiB and ${cpus} vCPUs for domains that need ${demand.memoryMiB} MiB and ${demand.vcpus} vCPUs (hosts already in maintenance: ${holders})`,
      });
    }
  }
  return out;
}

export interface DrainDomain {
  key: string;
  memoryMiB: number;
  phase: string;
  state: string;
  evictionStrategy: EvictionStrategy;
  runStrategy: RunStrategy;
  migratable: boolean;
  /** Why it cannot live-migrate, when it cannot. */
  notMigratableWhy?: string;
  evictedByThis: boolean;
  saved: boolean;
}

export interface DrainMigration {
  domainKey: string;
  phase: string;
  failureReason?: string;
}

export type DrainAction =
  | { kind: "migrate"; domainKey: string; attempt: number; priority: number }
  | { kind: "evict"; domainKey: string; why: string }
  | { kind: "release"; domainKey: string }
  | { kind: "blocked"; domainKey: string; reason: string }
  | { kind: "inProgress"; domainKey: string };

const RUNNING = new Set(["running", "blocked", "paused"]);
const AT_REST = new Set(["Stopped", "Succeeded", "Failed", "CrashLoopBackOff"]);

/** Live-migration attempts per domain before LiveMigrateIfPossible falls back to a restart. */
export const MAX_ATTEMPTS = 3;

/** What to do now with each domain still on the host. */
export function drainActions(domains: DrainDomain[], migrations: DrainMigration[]): DrainAction[] {
  const byDomain = new Map<string, DrainMigration[]>();
  for (const m of migrations) byDomain.set(m.domainKey, [...(byDomain.get(m.domainKey) ?? []), m]);
  const out: DrainAction[] = [];
  for (const d of domains) {
    const ms = byDomain.get(d.key) ?? [];
    if (ms.some((m) => !isFinishedPhase(m.phase))) {
      out.push({ kind: "inProgress", domainKey: d.key });
      continue;
    }
    const failed = ms.filter((m) => m.phase === "Failed" || m.phase === "Aborted");
    const lastFailure = failed.at(-1)?.failureReason;
    if (!RUNNING.has(d.state)) {
      if (d.saved) {
        out.push({
          kind: "blocked",
          domainKey: d.key,
          reason: "its saved image is on this host: set powerState Running or delete it",
        });
      } else if (d.evictedByThis || AT_REST.has(d.phase)) out.push({ kind: "release", domainKey: d.key });
      else out.push({ kind: "inProgress", domainKey: d.key }); // Starting, Restoring...: let it settle.
      continue;
    }
    if (d.evictedByThis) {
      out.push({ kind: "inProgress", domainKey: d.key }); // Its agent is stopping it.
      continue;
    }
    const restart = (why: string): DrainAction => ({ kind: "evict", domainKey: d.key, why });
    const migrate: DrainAction = {
      kind: "migrate",
      domainKey: d.key,
      attempt: failed.length + 1,
      // Largest first: the longest transfers start early, which shortens the drain.
      priority: Math.min(1_000_000, d.memoryMiB),
    };
    switch (d.evictionStrategy) {
      case "None":
        out.push({ kind: "blocked", domainKey: d.key, reason: "evictionStrategy None: move or stop it yourself" });
        break;
      case "Restart":
        out.push(restart("evictionStrategy Restart"));
        break;
      case "LiveMigrate":
        if (!d.migratable)
          out.push({
            kind: "blocked",
            domainKey: d.key,
            reason: `cannot live-migrate: ${d.notMigratableWhy ?? "not migratable"}`,
          });
        else if (failed.length >= MAX_ATTEMPTS)
          out.push({
            kind: "blocked",
            domainKey: d.key,
            reason: `${failed.length} live migrations failed, the last: ${lastFailure}`,
          });
        else out.push(migrate);
        break;
      case "LiveMigrateIfPossible":
        if (!d.migratable) out.push(restart(`cannot live-migrate (${d.notMigratableWhy ?? "not migratable"})`));
        else if (failed.length >= MAX_ATTEMPTS) out.push(restart(`${failed.length} live migrations failed`));
        else out.push(migrate);
        break;
    }
  }
  return out;
}

/**
 * Seconds left, from the migrations this drain has finished: their mean
 * seconds per MiB applied to the memory still to move, spread over the
 * migrations that may run at once. Undefined before the first measurement.
 */
export function etaSeconds(
  done: Array<{ memoryMiB: number; seconds: number }>,
  remainingMiB: number,
  parallel: number,
): number | undefined {
  const measured = done.filter((d) => d.memoryMiB > 0 && d.seconds > 0);
  if (measured.length === 0) return undefined;
  const secPerMiB = measured.reduce((s, d) => s + d.seconds / d.memoryMiB, 0) / measured.length;
  return Math.ceil((remainingMiB * secPerMiB) / Math.max(1, parallel));
}

/** One of the drain's own migrations, as the summary counts it. */
export interface DrainedMigration {
  /** The XenDomain's name (spec.domain). */
  domain: string;
  phase?: string;
  memoryMiB: number;
  /** From staging to completion (NaN when not measured). */
  seconds: number;
}

/** Everything a drain's report is derived from, read once. */
export interface DrainFacts {
  host: string;
  /** Memory (MiB) of each domain still on the host. */
  remainingMiB: number[];
  /** What drainActions decided this pass (its blocked ones are reported). */
  actions: DrainAction[];
  migrations: DrainedMigration[];
  restartedDomains: Array<{ namespace: string; name: string }>;
  /** What the status said before (counts and times carry over). */
  previous: { total?: number; startTime?: string; completionTime?: string };
  /** XenMigrationPolicy/default's limits, when set: how many of the drain's migrations run at once. */
  policy?: { parallelOutboundMigrationsPerHost?: number; parallelMigrationsPerCluster?: number };
  nowMs: number;
}

export interface DrainReport {
  phase: "Drained" | "Blocked" | "Draining";
  /** The kstatus condition to set: Ready once drained, Stalled when only blocked domains remain. */
  mode: "Ready" | "Stalled" | "Reconciling";
  status: {
    phase: "Drained" | "Blocked" | "Draining";
    message: string;
    total: number;
    remaining: number;
    migrated: number;
    restarted: number;
    restartedDomains: Array<{ namespace: string; name: string }>;
    blocked: number;
    blockedDomains: Array<{ namespace: string; name: string; reason: string }>;
    startTime: string;
    completionTime?: string;
    eta?: string;
  };
  requeueAfterMs: number;
}

/** A drain's phase, message, counts, times and ETA, and when to look again. */
export function drainReport(f: DrainFacts): DrainReport {
  const blocked = f.actions.filter((a): a is Extract<DrainAction, { kind: "blocked" }> => a.kind === "blocked");
  const succeeded = f.migrations.filter((x) => x.phase === "Succeeded");
  const migrated = new Set(succeeded.map((x) => x.domain)).size;
  const remaining = f.remainingMiB.length;
  const total = Math.max(f.previous.total ?? 0, remaining);
  const remainingMiB = f.remainingMiB.reduce((s, x) => s + x, 0);
  const parallel = Math.min(
    f.policy?.parallelOutboundMigrationsPerHost ?? DEFAULT_LIMITS.outboundPerHost,
    f.policy?.parallelMigrationsPerCluster ?? DEFAULT_LIMITS.cluster,
  );
  const eta = etaSeconds(
    succeeded.map((x) => ({ memoryMiB: x.memoryMiB, seconds: x.seconds })),
    remainingMiB,
    parallel,
  );
  // A migration hands the domain over before it is marked Succeeded: settled only once none is in flight,
  // so that the counts reported with Drained or Blocked are final.
  const inFlight = f.migrations.some((x) => !isFinishedPhase(x.phase));
  const drained = remaining === 0 && !inFlight;
  const onlyBlocked = remaining > 0 && blocked.length === remaining && !inFlight;
  const phase = drained ? "Drained" : onlyBlocked ? "Blocked" : "Draining";
  const now = rfc3339(new Date(f.nowMs));
  const message = drained
    ? `${f.host} is empty: ${migrated} migrated, ${f.restartedDomains.length} restarted`
    : onlyBlocked
      ? `${blocked.length} domains cannot be evicted (see blockedDomains)`
      : `${remaining} domains left on ${f.host} (${remainingMiB} MiB)`;
  return {
    phase,
    mode: drained ? "Ready" : onlyBlocked ? "Stalled" : "Reconciling",
    status: {
      phase,
      message,
      total,
      remaining,
      migrated,
      restarted: f.restartedDomains.length,
      restartedDomains: f.restartedDomains,
      blocked: blocked.length,
      blockedDomains: blocked.slice(0, 1024).map((b) => {
        const [namespace = "", n = ""] = b.domainKey.split("/");
        return { namespace, name: n, reason: b.reason };
      }),
      startTime: f.previous.startTime ?? now,
      completionTime: drained ? (f.previous.completionTime ?? now) : undefined,
      eta: !drained && eta !== undefined ? rfc3339(new Date(f.nowMs + eta * 1000)) : undefined,
    },
    requeueAfterMs: drained ? 30_000 : onlyBlocked ? 10_000 : 2_000,
  };
}
