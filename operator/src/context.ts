// What every controller's setup gets: the manager (client, events, metrics,
// leader election) and the shared informers, one per kind, so that no two
// controllers keep two caches of the same objects.
import type { XenBalancer, XenDomain, XenHost, XenMaintenance, XenMigration, XenMigrationPolicy } from "@kubexen/crds";
import type { Informer, KubeObject, Logger, Manager } from "@kubexen/sdk";
import type { LeaseView } from "./fencing.ts";
import type { OperatorMetrics } from "./metrics.ts";

export interface OperatorContext {
  mgr: Manager;
  log: Logger;
  metrics: OperatorMetrics;
  /** Where the agents' Leases, the leader Lease and the CA's ConfigMap live. */
  namespace: string;
  domains: Informer<XenDomain>;
  hosts: Informer<XenHost>;
  maintenances: Informer<XenMaintenance>;
  migrations: Informer<XenMigration>;
  policies: Informer<XenMigrationPolicy>;
  balancers: Informer<XenBalancer>;
  leases: Informer<KubeObject & { spec?: LeaseView }>;
}
