// The XenHost this agent registers and keeps current: capacity, allocatable,
// what its domains take, capabilities, the migration endpoint, orphans, and
// the Ready condition (True while the agent reports). As kubelet does with
// node status, the agent measures every interval but writes only when the
// report changed, and at least every few minutes: liveness is the Lease.
import { newObject, quantityMiB, resources, type XenDomain, type XenHostStatus } from "@kubexen/crds";
import type { DomainInfo, HostInfo } from "@kubexen/hypervisor";
import {
  type Condition,
  type EventRecorder,
  jsonEqual,
  type KubeClient,
  type KubeObject,
  rfc3339,
  setCondition,
} from "@kubexen/sdk";

export interface HostReport {
  info: HostInfo;
  domains: DomainInfo[];
  bound: XenDomain[];
  /** UUIDs that a migration involving this host is bringing in or taking out. */
  migrating: Set<string>;
  endpoint?: string;
  driver: "xl" | "sim";
  agentVersion: string;
  fencing: { enabled: boolean; windowSeconds: number };
  previous?: { conditions?: Condition[]; cpuTime?: Map<string, number>; at?: number };
}

/** The conditions the agent owns on its XenHost (host health owns Fenced). */
export const AGENT_HOST_CONDITIONS = new Set(["Ready", "MemoryPressure"]);

/** A change in guest CPU load smaller than this (fraction of the host) is not worth a write. */
export const CPU_LOAD_STEP = 0.05;

/**
 * The wait before the next host report. A report costs dom0 two xl processes; while a live
 * migration runs here it needs that CPU more (its TLS and xl's save or restore), and the
 * migration's own status says what is in flight, so reports come a third as often.
 */
export function nextReportMs(intervalMs: number, migrationsHere: number): number {
  return migrationsHere > 0 ? intervalMs * 3 : intervalMs;
}

/**
 * Whether a new report says something the XenHost's current status does not:
 * any field but the report time, the agent's own conditions (host health may
 * have set Ready=False meanwhile), and CPU load only once it moved by a step.
 */
export function reportChanged(current: XenHostStatus | undefined, next: XenHostStatus): boolean {
  if (!current) return true;
  const last = { ...current, conditions: current.conditions?.filter((c) => AGENT_HOST_CONDITIONS.has(c.type)) };
  const { lastHeartbeatTime: _a, cpuLoad: la, ...a } = last;
  const { lastHeartbeatTime: _b, cpuLoad: lb, ...b } = next;
  if (!jsonEqual(a, b)) return true;
  if (la === undefined || lb === undefined) return la !== lb;
  return Math.abs(la - lb) >= CPU_LOAD_STEP;
}

/** Memory kept back from guests on top of dom0's share (MiB). */
const RESERVED_MIB = 0;

/** The XenHost status from what the hypervisor and the bound XenDomains say. Pure. */
export function hostStatus(
  r: HostReport,
  now = new Date(),
): { status: XenHostStatus; orphans: DomainInfo[]; cpuTime: Map<string, number> } {
  const boundUUIDs = new Set(r.bound.map((d) => d.status?.uuid).filter((u): u is string => !!u));
  const orphans = r.domains.filter((d) => !boundUUIDs.has(d.uuid) && !r.migrating.has(d.uuid));
  const managed = r.domains.filter((d) => boundUUIDs.has(d.uuid));
  const allocatedMiB = r.bound.reduce((s, d) => s + quantityMiB(d.spec.memory), 0);
  const allocatedVcpus = r.bound.reduce((s, d) => s + d.spec.vcpus, 0);
  // CPU load from the domains' CPU time since the last report.
  const cpuTime = new Map(r.domains.map((d) => [d.uuid, d.cpuTimeSeconds]));
  let cpuLoad: number | undefined;
  if (r.previous?.cpuTime && r.previous.at) {
    const dt = (now.getTime() - r.previous.at) / 1000;
    let used = 0;
    for (const [uuid, t] of cpuTime) used += Math.max(0, t - (r.previous.cpuTime.get(uuid) ?? t));
    if (dt > 0) cpuLoad = Math.round((used / dt / Math.max(1, r.info.cpus)) * 1000) / 1000;
  }
  const guestMiB = r.info.totalMemoryMiB - r.info.dom0MemoryMiB - RESERVED_MIB;
  const memoryPressure = r.info.freeMemoryMiB < Math.max(128, guestMiB * 0.02);
  let conditions = setCondition(
    r.previous?.conditions?.filter((c) => AGENT_HOST_CONDITIONS.has(c.type)),
    {
      type: "Ready",
      status: "True",
      reason: "AgentReporting",
      message: `node agent ${r.agentVersion} (${r.driver}) reports Xen ${r.info.xenVersion}`,
    },
    now,
  );
  conditions = setCondition(
    conditions,
    {
      type: "MemoryPressure",
      status: memoryPressure ? "True" : "False",
      reason: memoryPressure ? "LowFreeMemory" : "EnoughFreeMemory",
      message: `${r.info.freeMemoryMiB} MiB free`,
    },
    now,
  );
  return {
    orphans,
    cpuTime,
    status: {
      capacity: { cpus: r.info.cpus, memoryMiB: r.info.totalMemoryMiB, numaNodes: r.info.numaNodes },
      allocatable: { cpus: r.info.cpus, memoryMiB: guestMiB },
      allocated: { vcpus: allocatedVcpus, memoryMiB: allocatedMiB },
      freeMemoryMiB: r.info.freeMemoryMiB,
      dom0: { memoryMiB: r.info.dom0MemoryMiB, vcpus: r.info.dom0Vcpus },
      xenVersion: r.info.xenVersion,
      agentVersion: r.agentVersion,
      driver: r.driver,
      capabilities: {
        guestTypes: r.info.guestTypes,
        hap: r.info.hap,
        shadow: r.info.shadow,
        liveMigratable: r.info.liveMigratable,
        pciAssignable: r.info.pciAssignable,
      },
      migrationEndpoint: r.endpoint,
      domainCount: managed.length,
      cpuLoad,
      orphans: orphans.map((d) => ({ name: d.name, uuid: d.uuid, domid: d.domid, memoryMiB: d.memoryMiB })),
      lastHeartbeatTime: rfc3339(now),
      fencing: r.fencing,
      conditions: conditions as XenHostStatus["conditions"],
    },
  };
}

/** Creates the XenHost if it is missing (labels are the administrator's; the agent sets none). */
export async function registerHost(client: KubeClient, host: string, fieldManager: string): Promise<KubeObject> {
  const existing = await client.getOrUndefined(resources.xenHosts, host);
  if (existing) return existing;
  return client.apply(resources.xenHosts, newObject("XenHost", { name: host }), { fieldManager });
}

/** Reports each orphan once per agent run, as an event on the XenHost. */
export class OrphanReporter {
  private readonly seen = new Set<string>();
  async report(events: EventRecorder, hostObj: KubeObject, orphans: DomainInfo[]): Promise<void> {
    for (const o of orphans) {
      if (this.seen.has(o.uuid)) continue;
      this.seen.add(o.uuid);
      await events.record(
        hostObj,
        "Warning",
        "OrphanDomain",
        "Report",
        `domain ${o.name || "(unnamed)"} (UUID ${o.uuid}, domid ${o.domid}) runs on this host but no XenDomain binds it; it is left alone`,
      );
    }
  }
}
