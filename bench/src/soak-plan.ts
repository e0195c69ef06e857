// The soak's decisions, apart from the processes it runs: which chaos action
// comes next, how failure reasons are grouped, and what the end state must
// satisfy. Pure, so that the test can show each check fails where it should.
import type { FleetView } from "@kubexen/e2e";
import { runsGuest } from "@kubexen/e2e";

export type ChaosKind = "operator" | "agent" | "api" | "cut";
export const CHAOS_KINDS: readonly ChaosKind[] = ["operator", "agent", "api", "cut"];

export type ChaosAction =
  /** SIGKILL the operator; start it again after downMs. */
  | { kind: "operator"; gapMs: number; downMs: number }
  /** SIGKILL one host's agent; start it again after downMs (its sim's domains stay). */
  | { kind: "agent"; gapMs: number; host: string; downMs: number }
  /** SIGKILL the API server and etcd; start both again after downMs. */
  | { kind: "api"; gapMs: number; downMs: number }
  /** Cut one host's path to the API server for ms (its agent keeps running). */
  | { kind: "cut"; gapMs: number; host: string; ms: number };

export interface ChaosLimits {
  /** How many actions of each kind the run may take. */
  budget: Record<ChaosKind, number>;
  /** Random wait before each action, in ms. */
  gapMs: [number, number];
  /** How long a killed process stays down, in ms. */
  downMs: [number, number];
  /** How long a cut lasts, in ms: shorter than the agents' Lease (40 s), as fencing is off. */
  cutMs: [number, number];
}

/** A seeded source of numbers in [0, 1) (mulberry32): a run's choices follow from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const between = (rand: () => number, [lo, hi]: [number, number]) => Math.round(lo + rand() * (hi - lo));

/** The next action: a kind with budget left, chosen at random; undefined once the budget is spent. */
export function nextChaos(
  done: Record<ChaosKind, number>,
  limits: ChaosLimits,
  hosts: readonly string[],
  rand: () => number,
): ChaosAction | undefined {
  const left = CHAOS_KINDS.filter((k) => done[k] < limits.budget[k]);
  if (left.length === 0 || hosts.length === 0) return undefined;
  const kind = left[Math.floor(rand() * left.length)] as ChaosKind;
  const gapMs = between(rand, limits.gapMs);
  const host = hosts[Math.floor(rand() * hosts.length)] as string;
  switch (kind) {
    case "operator":
      return { kind, gapMs, downMs: between(rand, limits.downMs) };
    case "agent":
      return { kind, gapMs, host, downMs: between(rand, limits.downMs) };
    case "api":
      return { kind, gapMs, downMs: between(rand, limits.downMs) };
    case "cut":
      return { kind, gapMs, host, ms: between(rand, limits.cutMs) };
  }
}

/** A failure reason without what differs between migrations (names, UUIDs, numbers), to count alike ones together. */
export function reasonGroup(reason: string | undefined): string {
  if (!reason) return "(no reason given)";
  return reason
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, "<uuid>")
    .replace(/\bsoak-h\d+\b/g, "<host>")
    .replace(/\bsoak\/d\d+\b|\bd\d+\b/g, "<domain>")
    .replace(/\bsoak\/m\d+\b|\bm\d+\b/g, "<migration>")
    .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, "<time>")
    .replace(/\d+(\.\d+)?/g, "N");
}

/** Counts per group, largest first. */
export function groupReasons(reasons: Array<string | undefined>): Array<{ reason: string; count: number }> {
  const n = new Map<string, number>();
  for (const r of reasons) n.set(reasonGroup(r), (n.get(reasonGroup(r)) ?? 0) + 1);
  return [...n]
    .map(([reason, count]) => ({ reason, count }))
    .sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
}

/** What the end state is checked against: the API's objects and the sims' own view. */
export interface SoakEnd {
  migrations: Array<{ name: string; phase?: string; failureReason?: string }>;
  /** Migrations the run created. */
  expectedMigrations: number;
  domains: Array<{
    name: string;
    phase?: string;
    host?: string;
    uuid?: string;
    migrating?: string;
  }>;
  hosts: string[];
  /** Names of the Leases in the agents' namespace. */
  leases: string[];
  leaseOf: (host: string) => string;
  view: FleetView;
  /** UUID -> boots the sims showed. */
  boots: (uuid: string) => number;
  overlaps: string[];
}

/** Every way the end state breaks the soak's invariants; [] when it holds. Pure. */
export function soakViolations(e: SoakEnd): string[] {
  const out: string[] = [];
  if (e.migrations.length !== e.expectedMigrations)
    out.push(`${e.migrations.length} XenMigrations exist, ${e.expectedMigrations} were created`);
  for (const m of e.migrations)
    if (m.phase !== "Succeeded" && m.phase !== "Failed") out.push(`migration ${m.name} ended ${m.phase ?? "never"}`);
  for (const o of e.overlaps) out.push(`two running copies: ${o}`);
  const where = new Map<string, string[]>();
  for (const [host, domains] of e.view) {
    for (const d of domains) {
      if (d.migration) out.push(`${host} keeps a --${d.migration} copy of ${d.name} (${d.uuid})`);
      if (runsGuest(d)) where.set(d.uuid, [...(where.get(d.uuid) ?? []), host]);
      else if (!d.migration) out.push(`${host} keeps ${d.name} (${d.uuid}) ${d.state}`);
    }
  }
  const known = new Set<string>();
  for (const d of e.domains) {
    if (d.uuid) known.add(d.uuid);
    if (d.phase !== "Running") out.push(`domain ${d.name} is ${d.phase ?? "without a phase"}`);
    if (d.migrating) out.push(`domain ${d.name} still names migration ${d.migrating} as current`);
    const on = where.get(d.uuid ?? "") ?? [];
    if (on.length !== 1 || on[0] !== d.host)
      out.push(`domain ${d.name} is bound to ${d.host} and runs on [${on.join(", ")}]`);
    const boots = e.boots(d.uuid ?? "");
    if (boots !== 1) out.push(`domain ${d.name} booted ${boots} times: restarted, not live-migrated`);
  }
  for (const [uuid, hosts] of where)
    if (!known.has(uuid)) out.push(`${uuid} runs on ${hosts.join(", ")} for no XenDomain`);
  const hostLeases = new Set(e.hosts.map(e.leaseOf));
  for (const l of e.leases) if (!hostLeases.has(l)) out.push(`Lease ${l} belongs to no host`);
  for (const h of e.hosts) if (!e.leases.includes(e.leaseOf(h))) out.push(`host ${h} has no Lease`);
  return out;
}
