// The operator process: a leader-elected manager running host health, the
// scheduler and the XenDomain lifecycle. Later controllers (migration,
// maintenance, balancing, HA) join here.
import type { KubeConfig } from "@kubernetes/client-node";
import {
  hostOfLease,
  resources,
  type XenBalancer,
  type XenDomain,
  type XenHost,
  type XenMaintenance,
  type XenMigration,
  type XenMigrationPolicy,
} from "@kubexen/crds";
import {
  CertificateAuthority,
  Controller,
  createLogger,
  type KubeClient,
  type KubeObject,
  type Logger,
  Manager,
  objectKey,
  type ServingOptions,
} from "@kubexen/sdk";
import { BalancerController } from "./balancer.ts";
import { upgradeCrds } from "./crd-upgrade.ts";
import { MIGRATION_SIGNER } from "./csr-plan.ts";
import { type Csr, CsrSigner, certificateSigningRequests } from "./csr-signer.ts";
import type { LeaseView } from "./fencing.ts";
import { HighAvailability } from "./ha.ts";
import { HostHealth, LEASES } from "./hosthealth.ts";
import { Lifecycle } from "./lifecycle.ts";
import { MAINTENANCE_LABEL, MaintenanceController } from "./maintenance.ts";
import { OperatorMetrics } from "./metrics.ts";
import { MigrationController } from "./migration.ts";
import { isFinishedPhase } from "./migration-plan.ts";
import { PolicyStatus } from "./policy-status.ts";
import { Scheduler } from "./scheduler.ts";

export interface OperatorOptions {
  kubeConfig: KubeConfig;
  namespace?: string;
  /** Leader election (on by default; off for single-process tests and the demo). */
  leaderElection?: boolean;
  identity?: string;
  /** Server-side apply this release's CRDs at start (crd-upgrade.ts); the release string, or off when absent. */
  crdRelease?: string;
  /**
   * The migration CA (PEM certificate and key), held by the operator alone: it signs agents' own migration
   * certificates and every transfer's token. Without it no live migration can run.
   */
  migrationCa?: { cert: string; key: string };
  /** Metrics (TLS, Kubernetes authn/authz) and health servers; none by default. */
  serving?: ServingOptions;
  exitOnLostLease?: boolean;
  logger?: Logger;
  /** Added to each host's fence window before its domains restart elsewhere (default 15 s). */
  fenceMarginMs?: number;
}

/** The ConfigMap in the operator's namespace that carries the migration CA's certificate (never its key) to hosts. */
export const MIGRATION_CA_CONFIGMAP = "kubexen-migration-ca";
const CONFIG_MAPS = { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true };

/**
 * Publishes the CA certificate for agents (the DaemonSet mounts it) and standalone installers, as
 * kube-root-ca.crt does for the cluster's CA: hosts need the certificate to check peers and tokens,
 * and must never see the key.
 */
async function publishMigrationCa(client: KubeClient, namespace: string, cert: string): Promise<void> {
  await client.apply(
    CONFIG_MAPS,
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: MIGRATION_CA_CONFIGMAP, namespace, labels: { "app.kubernetes.io/name": "kubexen" } },
      data: { "ca.crt": cert },
    } as KubeObject,
    { fieldManager: "kubexen-operator", force: true },
  );
}

export class Operator {
  readonly manager: Manager;
  readonly metrics: OperatorMetrics;
  private readonly crdRelease: string | undefined;
  private readonly caCert: string | undefined;
  private readonly namespace: string;
  private migrationCa: Promise<CertificateAuthority> | undefined;
  constructor(o: OperatorOptions) {
    this.crdRelease = o.crdRelease;
    this.caCert = o.migrationCa?.cert;
    const log = o.logger ?? createLogger("kubexen-operator");
    const namespace = o.namespace ?? "kubexen-system";
    this.namespace = namespace;
    const mgr = new Manager({
      kubeConfig: o.kubeConfig,
      name: "kubexen-operator",
      logger: log,
      handleSignals: false,
      ...o.serving,
      exitOnLostLease: o.exitOnLostLease,
      leaderElection:
        o.leaderElection === false ? undefined : { namespace, leaseName: "kubexen-operator", identity: o.identity },
    });
    this.manager = mgr;
    const domains = mgr.informer<XenDomain>(resources.xenDomains);
    const hosts = mgr.informer<XenHost>(resources.xenHosts);
    const maintenances = mgr.informer<XenMaintenance>(resources.xenMaintenances);

    const metrics = new OperatorMetrics(mgr.metrics.registry);
    this.metrics = metrics;
    const leases = mgr.informer<KubeObject & { spec?: LeaseView }>(LEASES, { namespace });
    const health = new HostHealth({
      client: mgr.client,
      hosts,
      leases,
      namespace,
      fieldManager: "kubexen-host-health",
      log,
      events: mgr.events,
      metrics,
      fenceMarginMs: o.fenceMarginMs,
    });
    mgr.add(
      new Controller({
        name: "hosthealth",
        logger: log,
        metrics: mgr.metrics,
        reconcile: (k) => health.reconcile(k),
      })
        .watch(hosts)
        // A renewal after an expiry brings a host back at once.
        .watch(leases, (ev) => hostOfLease(ev.obj.metadata.name ?? "")),
    );

    if (o.migrationCa) {
      const { cert, key } = o.migrationCa;
      const csrs = mgr.informer<Csr>(certificateSigningRequests, {
        fieldSelector: `spec.signerName=${MIGRATION_SIGNER}`,
      });
      const signer = new CsrSigner({
        client: mgr.client,
        csrs,
        ca: CertificateAuthority.load(cert, key),
        namespace,
        log,
      });
      mgr.add(
        new Controller({
          name: "migration-certificates",
          logger: log,
          metrics: mgr.metrics,
          reconcile: (k) => signer.reconcile(k),
        }).watch(csrs),
      );
    }

    const scheduler = new Scheduler({
      client: mgr.client,
      domains,
      hosts,
      maintenances,
      events: mgr.events,
      log,
      metrics,
    });
    const sched = new Controller({
      name: "scheduler",
      // Decisions are synchronous and assumed before any write, so workers only overlap their writes:
      // as kube-scheduler binds asynchronously, bindings in flight set the pace (32 at ~0.2 s each
      // under load keep up with 100 creates a second; 8 did not).
      concurrency: 32,
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
      metrics,
      caKey: o.migrationCa?.key,
    });
    const migCtrl = new Controller({
      name: "migration",
      concurrency: 4,
      logger: log,
      metrics: mgr.metrics,
      reconcile: (k) => mig.reconcile(k),
    });
    // A migration that ends, or whose source is done sending, frees a slot for the waiting ones.
    migCtrl.watch(migrations, (ev) => [objectKey(ev.obj), ...(mig.freedSlot(ev.obj) ? mig.waiting() : [])]);
    migCtrl.watch(policies, () => mig.waiting());
    mgr.add(migCtrl);
    // Says on the policy which generation the migration controller above decides from.
    const policyStatus = new PolicyStatus({ client: mgr.client, policies, log });
    mgr.add(
      new Controller({
        name: "migration-policy",
        logger: log,
        metrics: mgr.metrics,
        reconcile: (k) => policyStatus.reconcile(k),
      }).watch(policies),
    );

    const ha = new HighAvailability({
      client: mgr.client,
      hosts,
      domains,
      migrations,
      events: mgr.events,
      log,
      metrics,
    });
    const haCtrl = new Controller({
      name: "ha",
      logger: log,
      metrics: mgr.metrics,
      reconcile: (k) => ha.reconcile(k),
    }).watch(hosts);
    // A migration that settles may leave a domain on a fenced host.
    haCtrl.watch(migrations, (ev) => (isFinishedPhase(ev.obj.status?.phase) ? ev.obj.status?.sourceHost : undefined));
    mgr.add(haCtrl);
    // A host's fencing settles the migrations that involve it.
    migCtrl.watch(hosts, (ev) => mig.involving(ev.obj.metadata.name ?? ""));

    const maint = new MaintenanceController({
      client: mgr.client,
      maintenances,
      domains,
      hosts,
      migrations,
      policies,
      events: mgr.events,
      log,
      metrics,
    });
    const maintCtrl = new Controller({
      name: "maintenance",
      logger: log,
      metrics: mgr.metrics,
      reconcile: (k) => maint.reconcile(k),
    }).watch(maintenances);
    // The host a domain left counts too: its leaving may be what empties the host.
    maintCtrl.watch(domains, (ev) => [
      ...maint.forHost(ev.obj.status?.host),
      ...(ev.type === "update" && ev.old.status?.host !== ev.obj.status?.host
        ? maint.forHost(ev.old.status?.host)
        : []),
    ]);
    maintCtrl.watch(migrations, (ev) => ev.obj.metadata.labels?.[MAINTENANCE_LABEL]);
    // Host capacity decides whether a waiting maintenance may start.
    maintCtrl.watch(hosts, () => maint.all());
    mgr.add(maintCtrl);

    const balancers = mgr.informer<XenBalancer>(resources.xenBalancers);
    const balancer = new BalancerController({
      client: mgr.client,
      balancers,
      domains,
      hosts,
      migrations,
      maintenances,
      events: mgr.events,
      log,
      metrics,
    });
    // CPU samples accumulate from every status the agents write.
    domains.addHandler((ev) => {
      if (ev.type === "delete") balancer.rates.forget(ev.obj.status?.uuid ?? "");
      else balancer.rates.observe(ev.obj);
    });
    mgr.add(
      new Controller({
        name: "balancer",
        logger: log,
        metrics: mgr.metrics,
        reconcile: (k) => balancer.reconcile(k),
      }).watch(balancers),
    );

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

  async start(): Promise<void> {
    await this.migrationCa?.catch((err: Error) => {
      throw new Error(`the migration CA cannot be loaded: ${err.message}`);
    });
    if (this.caCert) await publishMigrationCa(this.manager.client, this.namespace, this.caCert);
    if (this.crdRelease) await upgradeCrds(this.manager.client, this.crdRelease, this.manager.log);
    return this.manager.start();
  }

  stop(): Promise<void> {
    return this.manager.stop();
  }
}
