// The domain controller: makes this host's domains match the XenDomains bound
// to it (status.host), one level-triggered reconcile per XenDomain, and
// writes what it observed with server-side apply under this host's field
// manager. Domains are found by UUID, so a restarted agent adopts running
// domains without touching them.
import type { DomainPhase, XenDomain, XenDomainStatus } from "@kubexen/crds";
import { resources, stableMac, statusApply, xenDomainName } from "@kubexen/crds";
import {
  type DomainConfig,
  type DomainInfo,
  type HostInfo,
  type Hypervisor,
  HypervisorError,
} from "@kubexen/hypervisor";
import {
  type EventRecorder,
  type Informer,
  jsonEqual,
  type KubeClient,
  type Logger,
  objectKey,
  type ReconcileResult,
  removeCondition,
  setCondition,
} from "@kubexen/sdk";
import { describeViolations, FORBIDDEN_HOST_RESOURCE, type HostPolicy } from "./confine.ts";
import { hostResourceViolations } from "./paths.ts";
import {
  type Action,
  actionVerb,
  type Backoff,
  nextLookMs,
  plan,
  settle,
  stalledHold,
  stalledRecheckMs,
  stalls,
} from "./plan.ts";

const AGENT_CONDITIONS = new Set(["Ready", "Stalled", "Reconciling", "Migratable"]);

export interface DomainControllerDeps {
  host: string;
  client: KubeClient;
  hv: Hypervisor;
  informer: Informer<XenDomain>;
  events: EventRecorder;
  fieldManager: string;
  saveDir: string;
  /** The dom0 directories and bridges domains may use: checked before every create and restore. */
  policy: HostPolicy;
  log: Logger;
  hostInfo: () => HostInfo | undefined;
  migrating: (uuid: string) => boolean;
  resyncMs: number;
  /**
   * How often a running domain's CPU time is written to status (the balancer's input); 5 minutes
   * by default, the balancer's default pass interval (DRS also balances on 5-minute averages).
   * Every write reaches every agent's watch: at 10,000 domains a 1-minute report alone is 167
   * writes a second.
   */
  cpuReportIntervalMs?: number;
  /** Restart backoff after crashes (kubelet's 10 s doubling to 5 min when unset). */
  backoff?: Backoff;
}

export function configFor(xd: XenDomain): DomainConfig {
  const uuid = xd.status?.uuid;
  if (!uuid) throw new Error(`${objectKey(xd)} has no UUID in status yet`);
  const macs = (xd.spec.networks ?? []).map(
    (n, i) => xd.status?.interfaces?.find((x) => x.index === i)?.mac ?? n.mac ?? stableMac(uuid, i),
  );
  return { name: xenDomainName(xd.metadata.namespace ?? "default", xd.metadata.name ?? ""), uuid, spec: xd.spec, macs };
}

/** Whether this domain can live-migrate from this host, and why not. */
export function migratability(
  xd: XenDomain,
  info: HostInfo | undefined,
): { ok: boolean; reason: string; message: string } {
  if (xd.spec.pciDevices?.length)
    return { ok: false, reason: "PCIPassthrough", message: `passes through ${xd.spec.pciDevices.join(", ")}` };
  if (info && !info.liveMigratable.includes(xd.spec.type)) {
    const why =
      xd.spec.type === "pv" && !info.shadow
        ? "Xen on this host has no shadow paging"
        : "the host lacks the paging support it needs";
    return {
      ok: false,
      reason: "GuestTypeNotMigratable",
      message: `${xd.spec.type} guests cannot live-migrate from ${info.hostname}: ${why}`,
    };
  }
  return { ok: true, reason: "Migratable", message: "can live-migrate" };
}

export class DomainController {
  private readonly d: DomainControllerDeps;
  private readonly lastCpuWrite = new Map<string, number>();

  constructor(d: DomainControllerDeps) {
    this.d = d;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const { d } = this;
    let xd = d.informer.get(key);
    if (!xd || xd.status?.host !== d.host) return undefined;
    const uuid = xd.status?.uuid;
    if (!uuid) return undefined; // The scheduler has not finished binding it.
    const observed = await d.hv.getDomain(uuid);
    const hold = stalledHold(xd.status, xd.metadata.generation, observed);
    if (hold) return hold.recheckMs ? { requeueAfterMs: hold.recheckMs } : undefined;
    const p = plan({
      spec: xd.spec,
      status: xd.status,
      observed,
      deleting: !!xd.metadata.deletionTimestamp,
      migrating: d.migrating(uuid),
      nowMs: Date.now(),
      saveDir: d.saveDir,
      backoff: d.backoff,
    });
    if (p.confirmBinding) {
      const fresh = await d.client.getOrUndefined<XenDomain>(
        resources.xenDomains,
        xd.metadata.name ?? "",
        xd.metadata.namespace,
      );
      if (!fresh || fresh.status?.host !== d.host || fresh.status?.uuid !== uuid) return undefined;
      if (fresh.metadata.resourceVersion !== xd.metadata.resourceVersion) {
        await d.informer.waitForChange(key, xd.metadata.resourceVersion);
        return { requeueAfterMs: 10 };
      }
    }
    const a = p.action;
    if (a.kind === "create" || a.kind === "restore") {
      // The last line before xl: whatever the API let through, a refused domain never reaches the
      // hypervisor. Stalled until the spec changes (the hold above), then checked again.
      const refused = await this.refusal(xd);
      if (refused) {
        await this.write(xd, undefined, "Failed", p.statusPatch, "Stalled", refused, FORBIDDEN_HOST_RESOURCE);
        await d.events.record(xd, "Warning", FORBIDDEN_HOST_RESOURCE, actionVerb(a), refused);
        return undefined;
      }
    }
    if (p.announce) xd = await this.write(xd, observed, p.phase, p.statusPatch, "Reconciling", p.reason);
    let after: DomainInfo | undefined;
    try {
      after = await this.execute(xd, a, observed);
    } catch (err) {
      if (err instanceof HypervisorError && stalls(err.code)) {
        await this.write(xd, undefined, "Failed", p.statusPatch, "Stalled", `${err.message}`, err.code);
        await d.events.record(xd, "Warning", err.code, actionVerb(a), err.message);
        const recheckMs = stalledRecheckMs(err.code);
        return recheckMs ? { requeueAfterMs: recheckMs } : undefined;
      }
      throw err;
    }
    const o = settle(p, {
      after,
      deleting: !!xd.metadata.deletionTimestamp,
      restartCount: xd.status?.restartCount ?? 0,
      host: d.host,
      nowMs: Date.now(),
    });
    if (o.event) await d.events.record(xd, o.event.type, o.event.reason, o.event.action, o.event.message);
    await this.write(xd, after, o.phase, o.statusPatch, o.mode, p.reason);
    return { requeueAfterMs: nextLookMs(a, after, Date.now(), d) };
  }

  /** Why this host refuses the domain's dom0 paths, bootloader or bridges; undefined when it allows them. */
  private async refusal(xd: XenDomain): Promise<string | undefined> {
    const { policy, log } = this.d;
    const violations = await hostResourceViolations(xd.spec, policy);
    if (!violations.length) return undefined;
    // Where each path really leads is for the host's administrator, not the tenant's events.
    log.warn(
      {
        domain: objectKey(xd),
        generation: xd.metadata.generation,
        violations: violations.map((v) => ({ field: v.field, resolved: v.resolved })),
      },
      "refused a domain: it names host resources outside the policy",
    );
    return describeViolations(violations).slice(0, 8192);
  }

  private async execute(xd: XenDomain, a: Action, observed: DomainInfo | undefined): Promise<DomainInfo | undefined> {
    const { hv } = this.d;
    const uuid = xd.status?.uuid ?? "";
    switch (a.kind) {
      case "none":
      case "wait":
        return observed;
      case "create": {
        const info = await hv.create(configFor(xd), { paused: a.paused });
        if (xd.spec.cpu)
          await hv.setCredit2(uuid, { weight: xd.spec.cpu.weight, cap: xd.spec.cpu.cap }).catch(() => {});
        return info;
      }
      case "restore":
        return hv.restore(a.path, { paused: a.paused, uuid });
      case "shutdown":
        await hv.shutdown(uuid, a.graceMs);
        return undefined;
      case "destroy":
        await hv.destroy(uuid);
        return undefined;
      case "pause":
        await hv.pause(uuid);
        return hv.getDomain(uuid);
      case "unpause":
        await hv.unpause(uuid);
        return hv.getDomain(uuid);
      case "save":
        await hv.save(uuid, a.path);
        return undefined;
      case "setMemory":
        await hv.setMemory(uuid, a.mib);
        return hv.getDomain(uuid);
      case "setVcpus":
        await hv.setVcpus(uuid, a.vcpus);
        return hv.getDomain(uuid);
    }
  }

  /** Applies this agent's part of the status: everything it owns, every time (server-side apply). */
  private async write(
    xd: XenDomain,
    dom: DomainInfo | undefined,
    phase: DomainPhase,
    patch: Partial<XenDomainStatus>,
    mode: "Ready" | "Reconciling" | "Stalled",
    message: string,
    stallReason?: string,
  ): Promise<XenDomain> {
    const { d } = this;
    const cur = xd.status ?? {};
    const gen = xd.metadata.generation;
    const ownConds = (cur.conditions ?? []).filter((c) => AGENT_CONDITIONS.has(c.type));
    let conds = ownConds;
    const running =
      phase === "Running" || phase === "Paused" || phase === "Saved" || phase === "Stopped" || phase === "Succeeded";
    if (mode === "Stalled") {
      conds = setCondition(conds, {
        type: "Stalled",
        status: "True",
        reason: stallReason ?? "Failed",
        message,
        observedGeneration: gen,
      });
      conds = setCondition(conds, {
        type: "Ready",
        status: "False",
        reason: stallReason ?? "Failed",
        message,
        observedGeneration: gen,
      });
      conds = removeCondition(conds, "Reconciling");
    } else if (mode === "Reconciling" || !running) {
      conds = setCondition(conds, {
        type: "Reconciling",
        status: "True",
        reason: phase,
        message,
        observedGeneration: gen,
      });
      conds = setCondition(conds, { type: "Ready", status: "False", reason: phase, message, observedGeneration: gen });
      conds = removeCondition(conds, "Stalled");
    } else {
      conds = setCondition(conds, {
        type: "Ready",
        status: "True",
        reason: phase,
        message: `${phase} on ${d.host}`,
        observedGeneration: gen,
      });
      conds = removeCondition(removeCondition(conds, "Reconciling"), "Stalled");
    }
    const m = migratability(xd, d.hostInfo());
    conds = setCondition(conds, {
      type: "Migratable",
      status: m.ok ? "True" : "False",
      reason: m.reason,
      message: m.message,
      observedGeneration: gen,
    });
    const keep = <K extends keyof XenDomainStatus>(k: K) => (k in patch ? patch[k] : cur[k]);
    const status: Partial<XenDomainStatus> = {
      phase,
      state: dom ? dom.state : "absent",
      domid: dom?.domid,
      memoryMiB: dom?.memoryMiB,
      vcpus: dom?.vcpus,
      migratable: m.ok,
      savedImage: keep("savedImage"),
      restartCount: keep("restartCount"),
      lastRestartTime: keep("lastRestartTime"),
      nextRestartTime: keep("nextRestartTime"),
      startTime: keep("startTime"),
      observedGeneration: gen,
      conditions: conds as XenDomainStatus["conditions"],
    };
    const uuid = cur.uuid ?? "";
    const lastCpu = this.lastCpuWrite.get(uuid) ?? 0;
    const cpuDue = Date.now() - lastCpu > (d.cpuReportIntervalMs ?? 300_000);
    // Only this agent's fields count: the scheduler's conditions sit in the same list.
    const changed = (Object.keys(status) as Array<keyof XenDomainStatus>).some((k) =>
      k === "conditions" ? !jsonEqual(conds, ownConds) : !jsonEqual(status[k], cur[k]),
    );
    if (!changed && !cpuDue) return xd;
    if (dom) {
      status.cpuTimeSeconds = dom.cpuTimeSeconds;
      this.lastCpuWrite.set(uuid, Date.now());
    }
    for (const k of Object.keys(status) as Array<keyof XenDomainStatus>) if (status[k] === undefined) delete status[k];
    const written = await d.client.applyStatus<XenDomain>(
      resources.xenDomains,
      statusApply("XenDomain", { name: xd.metadata.name, namespace: xd.metadata.namespace }, status),
      d.fieldManager,
    );
    // Read our own write before deciding again: the next reconcile must not see the old status.
    if (written.metadata.resourceVersion !== xd.metadata.resourceVersion) {
      await d.informer.waitForChange(objectKey(xd), xd.metadata.resourceVersion);
    }
    return written;
  }
}
