// The operator process: a leader-elected manager, the shared informers, and
// the list of controllers, each of which declares what it reconciles and
// watches in its own setup (docs/architecture.md, "Adding a controller").
import type { KubeConfig } from "@kubernetes/client-node";
import {
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
  createLogger,
  type KubeClient,
  type KubeObject,
  type Logger,
  Manager,
  type ServingOptions,
} from "@kubexen/sdk";
import { setupBalancer } from "./balancer.ts";
import type { OperatorContext } from "./context.ts";
import { upgradeCrds } from "./crd-upgrade.ts";
import { setupCsrSigner } from "./csr-signer.ts";
import type { LeaseView } from "./fencing.ts";
import { setupHighAvailability } from "./ha.ts";
import { LEASES, setupHostHealth } from "./hosthealth.ts";
import { setupLifecycle } from "./lifecycle.ts";
import { setupMaintenance } from "./maintenance.ts";
import { OperatorMetrics } from "./metrics.ts";
import { setupMigration } from "./migration.ts";
import { setupPolicyStatus } from "./policy-status.ts";
import { setupScheduler } from "./scheduler.ts";

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
    const metrics = new OperatorMetrics(mgr.metrics.registry);
    this.metrics = metrics;
    // One informer per kind, shared by every controller that reads it.
    const c: OperatorContext = {
      mgr,
      log,
      metrics,
      namespace,
      domains: mgr.informer<XenDomain>(resources.xenDomains),
      hosts: mgr.informer<XenHost>(resources.xenHosts),
      maintenances: mgr.informer<XenMaintenance>(resources.xenMaintenances),
      migrations: mgr.informer<XenMigration>(resources.xenMigrations),
      policies: mgr.informer<XenMigrationPolicy>(resources.xenMigrationPolicies),
      balancers: mgr.informer<XenBalancer>(resources.xenBalancers),
      leases: mgr.informer<KubeObject & { spec?: LeaseView }>(LEASES, { namespace }),
    };
    // Each controller says in its own setup what it reconciles and watches.
    setupHostHealth(c, o.fenceMarginMs);
    if (o.migrationCa) {
      // A CA that does not load stops the start (start() awaits it) rather than every signature.
      this.migrationCa = CertificateAuthority.load(o.migrationCa.cert, o.migrationCa.key);
      this.migrationCa.catch(() => {});
      setupCsrSigner(c, this.migrationCa);
    }
    setupScheduler(c);
    setupMigration(c, o.migrationCa?.key);
    setupPolicyStatus(c);
    setupHighAvailability(c);
    setupMaintenance(c);
    setupBalancer(c);
    setupLifecycle(c);
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
