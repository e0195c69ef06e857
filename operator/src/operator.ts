// The operator process: a leader-elected manager running host health, the
// scheduler and the XenDomain lifecycle. Later controllers (migration,
// maintenance, balancing, HA) join here.
import type { KubeConfig } from "@kubernetes/client-node";
import {
  resources,
  type XenDomain,
  type XenHost,
  type XenMaintenance,
  type XenMigration,
  type XenMigrationPolicy,
} from "@kubexen/crds";
import { Controller, createLogger, type Logger, Manager, objectKey } from "@kubexen/sdk";
import { HostHealth } from "./hosthealth.ts";
import { Lifecycle } from "./lifecycle.ts";
import { MigrationController } from "./migration.ts";
import { Scheduler } from "./scheduler.ts";

export interface OperatorOptions {
  kubeConfig: KubeConfig;
  namespace?: string;
  /** Leader election (on by default; off for single-process tests and the demo). */
  leaderElection?: boolean;
  identity?: string;
  metricsPort?: number;
  exitOnLostLease?: boolean;
  logger?: Logger;
}

export class Operator {
  readonly manager: Manager;
  constructor(o: OperatorOptions) {
    const log = o.logger ?? createLogger("kubexen-operator");
    const namespace = o.namespace ?? "kubexen-system";
    const mgr = new Manager({
      kubeConfig: o.kubeConfig,
      name: "kubexen-operator",
      logger: log,
      handleSignals: false,
      metricsPort: o.metricsPort,
      exitOnLostLease: o.exitOnLostLease,
      leaderElection:
        o.leaderElection === false ? undefined : { namespace, leaseName: "kubexen-operator", identity: o.identity },
    });
    this.manager = mgr;
    const domains = mgr.informer<XenDomain>(resources.xenDomains);
    const hosts = mgr.informer<XenHost>(resources.xenHosts);
    const maintenances = mgr.informer<XenMaintenance>(resources.xenMaintenances);

    const health = new HostHealth({ client: mgr.client, hosts, namespace, fieldManager: "kubexen-host-health", log });
    mgr.add(
      new Controller({
        name: "hosthealth",
        logger: log,
        metrics: mgr.metrics,
        reconcile: (k) => health.reconcile(k),
      }).watch(hosts),
    );

    const scheduler = new Scheduler({ client: mgr.client, domains, hosts, maintenances, events: mgr.events, log });
    const sched = new Controller({
      name: "scheduler",
      concurrency: 1,
      logger: log,
      metrics: mgr.metrics,
      reconcile: (k) => scheduler.reconcile(k),
    });
    // Host and maintenance changes can make waiting domains schedulable.
    sched.watch(hosts, () => scheduler.pending());
    sched.watch(maintenances, () => scheduler.pending());
    // A domain leaving frees room for others.
    sched.watch(domains, (ev) => (ev.type === "delete" ? scheduler.pending() : objectKey(ev.obj)));
    mgr.add(sched);

    const migrations = mgr.informer<XenMigration>(resources.xenMigrations);
    const policies = mgr.informer<XenMigrationPolicy>(resources.xenMigrationPolicies);
    const mig = new MigrationController({
      client: mgr.client,
      migrations,
      domains,
      hosts,
      maintenances,
      policies,
      events: mgr.events,
      log,
    });
    const migCtrl = new Controller({
      name: "migration",
      concurrency: 4,
      logger: log,
      metrics: mgr.metrics,
      reconcile: (k) => mig.reconcile(k),
    });
    // A migration that ends frees a slot for the waiting ones.
    migCtrl.watch(migrations, (ev) => [
      objectKey(ev.obj),
      ...(ev.obj.status?.phase && ["Succeeded", "Failed", "Aborted"].includes(ev.obj.status.phase)
        ? mig.waiting()
        : []),
    ]);
    migCtrl.watch(policies, () => mig.waiting());
    mgr.add(migCtrl);

    const lifecycle = new Lifecycle({ client: mgr.client, domains, hosts, log });
    mgr.add(
      new Controller({
        name: "lifecycle",
        logger: log,
        metrics: mgr.metrics,
        reconcile: (k) => lifecycle.reconcile(k),
      }).watch(domains),
    );
  }

  start(): Promise<void> {
    return this.manager.start();
  }

  stop(): Promise<void> {
    return this.manager.stop();
  }
}
