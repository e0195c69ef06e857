// The balancer controller: every intervalSeconds, measures each host's load
// (CPU from the domains' CPU time as their agents report it, memory from
// their sizes), plans with balancer-plan.ts, writes the plan into the
// XenBalancer's status (Recommend) and, in Auto mode, creates XenMigrations
// with reason Balance. A pass waits while the previous pass's migrations run;
// a domain the balancer moved is not moved by it again within cooldownSeconds.
import { createHash } from "node:crypto";
import {
  effectiveBalancerMode,
  newObject,
  quantityMiB,
  reportedMigratability,
  resources,
  statusApply,
  type XenBalancer,
  type XenDomain,
  type XenHost,
  type XenMaintenance,
  type XenMigration,
} from "@kubexen/crds";
import {
  type EventRecorder,
  type Informer,
  type KubeClient,
  type Logger,
  markReady,
  markReconciling,
  objectKey,
  type ReconcileResult,
  rfc3339,
} from "@kubexen/sdk";
import { type BalanceDomain, type BalanceHost, planBalance } from "./balancer-plan.ts";
import type { OperatorContext } from "./context.ts";
import type { OperatorMetrics } from "./metrics.ts";
import { isFinishedPhase } from "./migration-plan.ts";
import { hostView, request } from "./views.ts";

export const BALANCER_MANAGER = "kubexen-balancer";
export const BALANCER_LABEL = "kubexen.io/balancer";

export interface BalancerDeps {
  client: KubeClient;
  balancers: Informer<XenBalancer>;
  domains: Informer<XenDomain>;
  hosts: Informer<XenHost>;
  migrations: Informer<XenMigration>;
  maintenances: Informer<XenMaintenance>;
  events: EventRecorder;
  log: Logger;
  metrics?: OperatorMetrics;
}

/** CPU use per domain in cores, from the CPU time its agent reports over time. */
export class CpuRates {
  private readonly samples = new Map<string, Array<{ t: number; cpu: number }>>();

  observe(xd: XenDomain, nowMs = Date.now()): void {
    const cpu = xd.status?.cpuTimeSeconds;
    const uuid = xd.status?.uuid;
    if (cpu === undefined || !uuid) return;
    const list = this.samples.get(uuid) ?? [];
    const last = list.at(-1);
    if (last && last.cpu === cpu) return;
    if (last && cpu < last.cpu) list.length = 0; // Restarted: its counter began again.
    list.push({ t: nowMs, cpu });
    this.samples.set(uuid, list.slice(-3));
  }

  forget(uuid: string): void {
    this.samples.delete(uuid);
  }

  /** Cores used between the two latest samples, if there are two. */
  rate(uuid: string | undefined): number | undefined {
    const list = uuid ? this.samples.get(uuid) : undefined;
    if (!list || list.length < 2) return undefined;
    const a = list.at(-2);
    const b = list.at(-1);
    if (!a || !b || b.t <= a.t) return undefined;
    return Math.max(0, (b.cpu - a.cpu) / ((b.t - a.t) / 1000));
  }
}

export class BalancerController {
  private readonly d: BalancerDeps;
  readonly rates = new CpuRates();
  constructor(d: BalancerDeps) {
    this.d = d;
  }

  async reconcile(name: string): Promise<ReconcileResult> {
    const b = this.d.balancers.get(name);
    if (!b || name !== "default") return undefined;
    const spec = b.spec;
    // The deprecated Off acts as Disabled.
    const mode = effectiveBalancerMode(spec.mode);
    const now = Date.now();
    const intervalMs = spec.intervalSeconds * 1000;
    if (mode === "Disabled")
      return this.report(
        b,
        { nextRunTime: undefined, recommendations: [] },
        "Ready",
        "Disabled",
        "balancing is disabled",
      );
    const last = b.status?.lastRunTime ? Date.parse(b.status.lastRunTime) : 0;
    const changed = b.status?.observedGeneration !== b.metadata.generation;
    if (!changed && now - last < intervalMs) return { requeueAfterMs: last + intervalMs - now };

    const mine = this.d.migrations.list().filter((m) => m.spec.reason === "Balance");
    const running = mine.filter((m) => !isFinishedPhase(m.status?.phase));
    if (running.length > 0) {
      await this.report(
        b,
        {},
        "Reconciling",
        "Waiting",
        `${running.length} migrations of the last pass are still running`,
      );
      return { requeueAfterMs: 5000 };
    }
    const cooldownMs = spec.cooldownSeconds * 1000;
    const lastMove = new Map<string, number>();
    for (const m of mine) {
      const k = `${m.metadata.namespace}/${m.spec.domain}`;
      const t = Date.parse(m.status?.completionTime ?? m.metadata.creationTimestamp ?? "") || 0;
      lastMove.set(k, Math.max(lastMove.get(k) ?? 0, t));
    }
    const busy = new Set(
      this.d.migrations
        .list()
        .filter((m) => !isFinishedPhase(m.status?.phase))
        .map((m) => `${m.metadata.namespace}/${m.spec.domain}`),
    );
    const maint = this.d.maintenances.list();
    const hostObjs = this.d.hosts.list();
    const hosts: BalanceHost[] = hostObjs.map((h) => {
      const v = hostView(h, maint);
      return { ...v, counted: v.ready };
    });
    const domains = this.domainsWithLoad(hostObjs, (x) => {
      const k = objectKey(x);
      const { migratable } = reportedMigratability(x.status);
      return migratable && x.status?.phase === "Running" && !busy.has(k) && now - (lastMove.get(k) ?? 0) >= cooldownMs;
    });
    const plan = planBalance(hosts, domains, {
      weights: spec.weights,
      threshold: spec.threshold,
      maxMoves: spec.maxMigrationsPerCycle,
      maxMovesPerHost: spec.maxMigrationsPerHost,
      minGain: spec.minGain,
    });
    this.d.metrics?.balancerImbalance.set(plan.imbalance);
    const recommendations = plan.moves.map((m) => {
      const [namespace = "", domain = ""] = m.key.split("/");
      return {
        namespace,
        domain,
        source: m.source,
        target: m.target,
        memoryMiB: m.memoryMiB,
        expectedGain: Math.round(m.gain * 1e6) / 1e6,
      };
    });
    let created = b.status?.migrationsCreated ?? 0;
    if (mode === "Auto") {
      for (const r of recommendations) {
        const id = createHash("sha256").update(`${r.namespace}/${r.domain}@${now}`).digest("hex").slice(0, 10);
        await this.d.client.create(
          resources.xenMigrations,
          newObject(
            "XenMigration",
            {
              name: `${`balance-${r.domain}`.slice(0, 230).replace(/[.-]+$/, "")}-${id}`,
              namespace: r.namespace,
              labels: { [BALANCER_LABEL]: "default" },
            },
            { domain: r.domain, targetHost: r.target, reason: "Balance" },
          ),
        );
        created++;
      }
      if (recommendations.length)
        await this.d.events.record(
          b,
          "Normal",
          "Balancing",
          "Migrate",
          `imbalance ${plan.imbalance.toFixed(3)}: ${recommendations.length} migrations toward ${plan.projected.toFixed(3)}`,
        );
    }
    this.d.metrics?.balancerMoves.inc({ mode }, recommendations.length);
    const message =
      plan.idle ??
      `imbalance ${plan.imbalance.toFixed(3)}; ${recommendations.length} moves ${mode === "Auto" ? "started" : "recommended"}, projected ${plan.projected.toFixed(3)}`;
    await this.report(
      b,
      {
        imbalance: round(plan.imbalance),
        projectedImbalance: round(plan.projected),
        lastRunTime: rfc3339(new Date(now)),
        nextRunTime: rfc3339(new Date(now + intervalMs)),
        recommendations,
        migrationsCreated: created,
      },
      "Ready",
      mode,
      message,
    );
    return { requeueAfterMs: intervalMs };
  }

  /** Domains bound to a host with their measured CPU; unmeasured ones share the rest of their host's load by vCPUs. */
  private domainsWithLoad(hostObjs: XenHost[], movable: (x: XenDomain) => boolean): BalanceDomain[] {
    const all = this.d.domains.list().filter((x) => x.status?.host && x.status.state !== "absent");
    const out: BalanceDomain[] = [];
    const byHost = new Map<string, XenDomain[]>();
    for (const x of all) byHost.set(x.status?.host ?? "", [...(byHost.get(x.status?.host ?? "") ?? []), x]);
    for (const h of hostObjs) {
      const name = h.metadata.name ?? "";
      const list = byHost.get(name) ?? [];
      const measured = list.map((x) => this.rates.rate(x.status?.uuid));
      const known = measured.reduce<number>((s, r) => s + (r ?? 0), 0);
      const hostCores = (h.status?.cpuLoad ?? 0) * (h.status?.capacity?.cpus ?? 0);
      const rest = Math.max(0, hostCores - known);
      const unknownVcpus = list.reduce((s, x, i) => s + (measured[i] === undefined ? x.spec.vcpus : 0), 0);
      for (const [i, x] of list.entries()) {
        const r = measured[i] ?? (unknownVcpus > 0 ? (rest * x.spec.vcpus) / unknownVcpus : 0);
        out.push({
          ...request(x),
          key: objectKey(x),
          host: name,
          memoryMiB: quantityMiB(x.spec.memory),
          cpuCores: r,
          movable: movable(x),
        });
      }
    }
    return out;
  }

  private async report(
    b: XenBalancer,
    fields: Record<string, unknown>,
    mode: "Ready" | "Reconciling",
    reason: string,
    message: string,
  ): Promise<ReconcileResult> {
    const gen = b.metadata.generation;
    const list = b.status?.conditions;
    const conds =
      mode === "Ready" ? markReady(list, gen, reason, message) : markReconciling(list, gen, reason, message);
    const status = { ...(b.status ?? {}), ...fields, observedGeneration: gen, conditions: conds };
    for (const k of Object.keys(status) as Array<keyof typeof status>) if (status[k] === undefined) delete status[k];
    const written = await this.d.client.applyStatus(
      resources.xenBalancers,
      statusApply("XenBalancer", { name: b.metadata.name }, status),
      BALANCER_MANAGER,
    );
    await this.d.balancers.waitForWrite(b.metadata.name ?? "", b.metadata.resourceVersion, written);
    return undefined;
  }
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;

/** The balancer: XenBalancer default; CPU samples accumulate from every status the agents write. */
export function setupBalancer(c: OperatorContext): BalancerController {
  const balancer = new BalancerController({
    client: c.mgr.client,
    balancers: c.balancers,
    domains: c.domains,
    hosts: c.hosts,
    migrations: c.migrations,
    maintenances: c.maintenances,
    events: c.mgr.events,
    log: c.log,
    metrics: c.metrics,
  });
  c.domains.addHandler((ev) => {
    if (ev.type === "delete") balancer.rates.forget(ev.obj.status?.uuid ?? "");
    else balancer.rates.observe(ev.obj);
  });
  c.mgr
    .controller("balancer", (k) => balancer.reconcile(k))
    .for(c.balancers)
    .complete();
  return balancer;
}
