// Placement, as pure decisions: which hosts can take a domain (filters, with
// the reasons the others cannot, counted as kube-scheduler does), which of
// them is best (scores), and the bookkeeping that keeps two domains bound at
// the same moment from overbooking a host. No I/O: the scheduler controller
// feeds it from informers and the benchmarks from generated clusters.
import type { GuestType } from "@kubexen/crds";

export interface HostView {
  name: string;
  ready: boolean;
  unschedulable: boolean;
  inMaintenance: boolean;
  labels: Record<string, string>;
  cpus: number;
  /** Memory guests may use (allocatable), MiB. */
  memoryMiB: number;
  guestTypes: GuestType[];
  pciAssignable: string[];
}

export interface PlacedDomain {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  memoryMiB: number;
  vcpus: number;
  pciDevices: string[];
}

export interface DomainRequest extends PlacedDomain {
  type: GuestType;
  hostSelector: Record<string, string>;
  antiAffinity: Array<Record<string, string>>;
}

/** Overcommit: vCPUs per physical CPU, and memory (Xen does not overcommit memory: 1). */
export interface OvercommitPolicy {
  cpuRatio: number;
  memoryRatio: number;
}

export const DEFAULT_OVERCOMMIT: OvercommitPolicy = { cpuRatio: 4, memoryRatio: 1 };

/** What is placed on each host: bound domains plus those assumed bound but not yet seen. */
export type Placements = Map<string, PlacedDomain[]>;

/** Read-only view of what is placed on each host (a Placements map, or an index kept from events). */
export interface PlacementLookup {
  get(host: string): readonly PlacedDomain[] | undefined;
}

const matches = (sel: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(sel).every(([k, v]) => labels[k] === v);

/** Why `host` cannot take `req`, or undefined if it can. */
export function unfit(
  req: DomainRequest,
  host: HostView,
  placed: readonly PlacedDomain[],
  policy: OvercommitPolicy = DEFAULT_OVERCOMMIT,
): string | undefined {
  if (!host.ready) return "not ready";
  if (host.inMaintenance) return "in maintenance";
  if (host.unschedulable) return "cordoned";
  if (!host.guestTypes.includes(req.type)) return `cannot run ${req.type} guests`;
  if (!matches(req.hostSelector, host.labels)) return "didn't match the host selector";
  if (req.pciDevices.length > 0) {
    const usedPci = new Set(placed.flatMap((d) => d.pciDevices));
    for (const p of req.pciDevices) {
      if (!host.pciAssignable.includes(p)) return `no PCI device ${p}`;
      if (usedPci.has(p)) return `PCI device ${p} in use`;
    }
  }
  for (const term of req.antiAffinity) {
    if (placed.some((d) => d.namespace === req.namespace && matches(term, d.labels))) return "anti-affinity";
  }
  // Symmetric: a placed domain's anti-affinity is checked by the caller's labels too.
  const mem = placed.reduce((s, d) => s + d.memoryMiB, 0);
  if (mem + req.memoryMiB > host.memoryMiB * policy.memoryRatio) return "insufficient memory";
  const vcpus = placed.reduce((s, d) => s + d.vcpus, 0);
  if (vcpus + req.vcpus > host.cpus * policy.cpuRatio) return "insufficient cpu";
  return undefined;
}

/**
 * Score of a feasible host, higher is better: prefer hosts that stay balanced
 * between CPU and memory use and have the most room left (spreading load).
 */
export function score(
  req: DomainRequest,
  host: HostView,
  placed: readonly PlacedDomain[],
  policy: OvercommitPolicy = DEFAULT_OVERCOMMIT,
): number {
  const memFrac = (placed.reduce((s, d) => s + d.memoryMiB, 0) + req.memoryMiB) / (host.memoryMiB * policy.memoryRatio);
  const cpuFrac = (placed.reduce((s, d) => s + d.vcpus, 0) + req.vcpus) / (host.cpus * policy.cpuRatio);
  const leastAllocated = 1 - (memFrac + cpuFrac) / 2;
  const balanced = 1 - Math.abs(memFrac - cpuFrac);
  return leastAllocated * 0.7 + balanced * 0.3;
}

export type Decision =
  | { host: string; score: number }
  | { host?: undefined; message: string; reasons: Record<string, number> };

/** "0/5 hosts available: 3 insufficient memory, 2 cordoned", as kube-scheduler words it. */
export function unschedulableMessage(total: number, reasons: Record<string, number>): string {
  const parts = Object.entries(reasons)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([r, n]) => `${n} ${r}`);
  return `0/${total} hosts available${parts.length ? `: ${parts.join(", ")}` : ""}`;
}

/** The best host for `req`, or why none fits. Ties break by host name, so decisions are reproducible. */
export function place(
  req: DomainRequest,
  hosts: HostView[],
  placements: PlacementLookup,
  policy: OvercommitPolicy = DEFAULT_OVERCOMMIT,
): Decision {
  let best: { host: string; score: number } | undefined;
  const reasons: Record<string, number> = {};
  for (const h of hosts) {
    const placed = placements.get(h.name) ?? [];
    const why = unfit(req, h, placed, policy);
    if (why) {
      reasons[why] = (reasons[why] ?? 0) + 1;
      continue;
    }
    const s = score(req, h, placed, policy);
    if (!best || s > best.score || (s === best.score && h.name < best.host)) best = { host: h.name, score: s };
  }
  return best ?? { message: unschedulableMessage(hosts.length, reasons), reasons };
}

/** Records a decision before the binding is visible, so the next decision sees it (kube-scheduler's assume). */
export function assume(placements: Placements, host: string, d: PlacedDomain): void {
  const list = placements.get(host);
  if (list) list.push(d);
  else placements.set(host, [d]);
}
