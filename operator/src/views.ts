// Turning API objects into the pure placement views.
import { quantityMiB, type XenDomain, type XenHost, type XenMaintenance } from "@kubexen/crds";
import { isFenced } from "./fencing.ts";
import type { DomainRequest, HostView, PlacedDomain, Placements } from "./placement.ts";

export function hostView(h: XenHost, maintenances: XenMaintenance[]): HostView {
  const s = h.status;
  // A fenced host (out of service, or silent past its fence window) takes nothing, whatever its agent last said.
  const ready = s?.conditions?.find((c) => c.type === "Ready")?.status === "True" && !isFenced(h);
  return {
    name: h.metadata.name ?? "",
    ready,
    unschedulable: h.spec?.unschedulable ?? false,
    inMaintenance: maintenances.some((m) => m.spec.host === h.metadata.name),
    labels: h.metadata.labels ?? {},
    cpus: s?.allocatable?.cpus ?? 0,
    memoryMiB: s?.allocatable?.memoryMiB ?? 0,
    guestTypes: s?.capabilities?.guestTypes ?? [],
    pciAssignable: s?.capabilities?.pciAssignable ?? [],
  };
}

export function placed(xd: XenDomain): PlacedDomain {
  return {
    namespace: xd.metadata.namespace ?? "",
    name: xd.metadata.name ?? "",
    labels: xd.metadata.labels ?? {},
    memoryMiB: quantityMiB(xd.spec.memory),
    vcpus: xd.spec.vcpus,
    pciDevices: xd.spec.pciDevices ?? [],
  };
}

export function request(xd: XenDomain): DomainRequest {
  return {
    ...placed(xd),
    type: xd.spec.type,
    hostSelector: xd.spec.hostSelector ?? {},
    antiAffinity: (xd.spec.antiAffinity ?? []).map((t) => t.matchLabels),
  };
}

/** Bound domains per host (those still holding their place: not finished). */
export function placements(domains: XenDomain[]): Placements {
  const m: Placements = new Map();
  for (const d of domains) {
    const host = d.status?.host;
    if (!host) continue;
    const list = m.get(host);
    if (list) list.push(placed(d));
    else m.set(host, [placed(d)]);
  }
  return m;
}
