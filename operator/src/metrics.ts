// The operator's decisions as Prometheus metrics, next to the SDK's generic
// controller metrics in the same registry.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export class OperatorMetrics {
  readonly schedulingDecisions: Counter<"result">;
  readonly migrationsEnded: Counter<"result" | "reason">;
  readonly migrationDuration: Histogram<"result">;
  readonly migrationDowntime: Histogram;
  readonly migrationBytes: Counter;
  readonly hostsFenced: Counter<"reason">;
  readonly haRestarts: Counter<"result">;
  readonly evictions: Counter<"action">;
  readonly balancerImbalance: Gauge;
  readonly balancerMoves: Counter<"mode">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.schedulingDecisions = new Counter({
      name: "kubexen_scheduling_decisions_total",
      help: "Scheduling decisions: bound or unschedulable.",
      labelNames: ["result"],
      registers,
    });
    this.migrationsEnded = new Counter({
      name: "kubexen_migrations_total",
      help: "Migrations that ended, by result (Succeeded, Failed, Aborted) and why they were made.",
      labelNames: ["result", "reason"],
      registers,
    });
    this.migrationDuration = new Histogram({
      name: "kubexen_migration_duration_seconds",
      help: "From a migration's creation to its end.",
      labelNames: ["result"],
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900],
      registers,
    });
    this.migrationDowntime = new Histogram({
      name: "kubexen_migration_downtime_seconds",
      help: "Guest downtime of successful live migrations, as the source agent measured it.",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5],
      registers,
    });
    this.migrationBytes = new Counter({
      name: "kubexen_migration_transferred_bytes_total",
      help: "Bytes sent by successful live migrations.",
      registers,
    });
    this.hostsFenced = new Counter({
      name: "kubexen_hosts_fenced_total",
      help: "Hosts declared fenced (fence window passed or out of service).",
      labelNames: ["reason"],
      registers,
    });
    this.haRestarts = new Counter({
      name: "kubexen_ha_restarts_total",
      help: "Domains released from a fenced host to restart elsewhere, or left because of their runStrategy.",
      labelNames: ["result"],
      registers,
    });
    this.evictions = new Counter({
      name: "kubexen_maintenance_evictions_total",
      help: "Maintenance evictions by action: migrate, restart, blocked.",
      labelNames: ["action"],
      registers,
    });
    this.balancerImbalance = new Gauge({
      name: "kubexen_balancer_imbalance",
      help: "Imbalance (standard deviation of normalised host load) at the balancer's last pass.",
      registers,
    });
    this.balancerMoves = new Counter({
      name: "kubexen_balancer_moves_total",
      help: "Moves the balancer planned, by mode (Recommend, Auto).",
      labelNames: ["mode"],
      registers,
    });
  }
}
