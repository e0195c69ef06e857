// The node agent: registers its XenHost, heartbeats through a Lease, fences
// itself when it loses the control plane, reports its host and orphans, and
// reconciles the XenDomains bound to it through the hypervisor driver.
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { KubeConfig } from "@kubernetes/client-node";
import {
  hostLeaseName,
  onlyProgressChanged,
  resources,
  statusApply,
  type XenDomain,
  type XenHost,
  type XenMigration,
} from "@kubexen/crds";
import type { DomainInfo, HostInfo, Hypervisor } from "@kubexen/hypervisor";
import {
  Controller,
  createLogger,
  errorMessage,
  type Informer,
  type InformerEvent,
  type Logger,
  Manager,
  objectKey,
  type ServingOptions,
} from "@kubexen/sdk";
import { HostCertificate } from "./certificate.ts";
import { DEFAULT_BRIDGES, DEFAULT_PATH_ROOTS, DEFAULT_PCI_DEVICES, type HostPolicy, pciAllowed } from "./confine.ts";
import { DomainController } from "./domains.ts";
import { Fencer, type Watchdog } from "./fence.ts";
import { Heartbeat } from "./heartbeat.ts";
import { hostStatus, nextReportMs, OrphanReporter, registerHost, reportChanged } from "./host.ts";
import { MigrationRoles } from "./migrations.ts";
import type { Backoff } from "./plan.ts";
import { MigrationServer, type TlsFiles } from "./transport.ts";
import { UsedTokens } from "./used-tokens.ts";

export const AGENT_VERSION = "0.1.0";

export interface AgentOptions {
  kubeConfig: KubeConfig;
  host: string;
  hypervisor: Hypervisor;
  /** Namespace of the agents' heartbeat Leases. */
  namespace?: string;
  /** host:port peers use for migration streams (advertised in XenHost status). */
  migrationEndpoint?: string;
  heartbeatIntervalMs?: number;
  leaseDurationSeconds?: number;
  /** How often the host is measured (default 10 s); the report is written when it changed. */
  reportIntervalMs?: number;
  /** Written at least this often even when nothing changed (default 5 min, as kubelet's node status). */
  reportMaxIntervalMs?: number;
  /** Self-fencing; omit to disable (only for hosts whose domains must never be restarted elsewhere automatically). */
  fencing?: { watchdog: Watchdog; fenceTimeoutMs: number; watchdogTimeoutMs: number };
  saveDir?: string;
  /** dom0 directories a domain's kernel, ramdisk and disks must resolve inside (default /var/lib/kubexen/images, /var/lib/xen/images). */
  allowedPathRoots?: readonly string[];
  /** Bridges a domain's interfaces may be attached to (default xenbr0). */
  allowedBridges?: readonly string[];
  /** PCI devices a domain may be given by passthrough (default none). */
  allowedPciDevices?: readonly string[];
  /** Live migration: the migration CA, this host's certificate, where to listen. */
  migration?: MigrationOptions;
  workers?: number;
  /** How often each running domain's CPU time goes to its status (default 5 minutes). */
  cpuReportIntervalMs?: number;
  /** Crash-restart backoff (default: 10 s doubling to 5 min). */
  restartBackoff?: Backoff;
  /** Metrics (TLS, Kubernetes authn/authz) and health servers; none by default. */
  serving?: ServingOptions;
  logger?: Logger;
}

export interface MigrationOptions {
  /** The migration CA certificate (PEM): peers' certificates and the operator's transfer tokens are checked with it. */
  ca: string | Buffer;
  /**
   * This host's certificate (CN = host) and key, when they are provided (cert-manager, tests). Otherwise
   * the agent makes its own key and asks the CertificateSigningRequest API (certificate.ts).
   */
  cert?: { cert: string | Buffer; key: string | Buffer };
  /** Where the agent keeps its key and certificate and the transfer tokens it accepted (default /var/lib/kubexen/pki). */
  certDir?: string;
  /** Addresses to name in the certificate besides the host. */
  ips?: string[];
  listenPort: number;
  listenHost?: string;
}

const TERMINAL = new Set(["Succeeded", "Failed", "Aborted"]);

export const DOMAIN_STATUS_MANAGER = "kubexen-agent";

export class NodeAgent {
  readonly host: string;
  readonly manager: Manager;
  private readonly o: AgentOptions;
  private readonly log: Logger;
  private readonly fieldManager: string;
  private readonly domains: Informer<XenDomain>;
  private readonly outgoing: Informer<XenMigration>;
  private readonly incoming: Informer<XenMigration>;
  private readonly controller: Controller;
  private readonly heartbeat: Heartbeat;
  private readonly fencer: Fencer | undefined;
  private readonly orphans = new OrphanReporter();
  private migrationServer: MigrationServer | undefined;
  private readonly migrationRoles: MigrationRoles | undefined;
  /** This host's migration credentials once it has them; until then it advertises no endpoint. */
  private migrationTls: TlsFiles | undefined;
  private hostCert: HostCertificate | undefined;
  private migrationSetup: Promise<void> | undefined;
  private readonly migrationAbort = new AbortController();
  private hostInfo: HostInfo | undefined;
  private reportTimer: NodeJS.Timeout | undefined;
  /** Set once the agent stops: no host report starts after it. */
  private stopped = false;
  private reporting: Promise<void> | undefined;
  private unwatch: (() => void) | undefined;
  private previous: { conditions?: never[]; cpuTime?: Map<string, number>; at?: number } = {};
  /** This agent's XenHost, as the API server has it. */
  private readonly self: Informer<XenHost>;
  /** When the report was last written. */
  private writtenAt: number | undefined;

  constructor(o: AgentOptions) {
    this.o = o;
    this.host = o.host;
    this.log = o.logger ?? createLogger(`kubexen-node-agent/${o.host}`);
    this.fieldManager = `kubexen-agent-${o.host}`.slice(0, 128);
    this.manager = new Manager({
      kubeConfig: o.kubeConfig,
      name: this.fieldManager,
      handleSignals: false,
      logger: this.log,
      ...o.serving,
      // Its events name its host: the admission policy holds an agent's events to its own host.
      eventInstance: o.host,
    });
    this.self = this.manager.informer<XenHost>(resources.xenHosts, { fieldSelector: `metadata.name=${o.host}` });
    this.domains = this.manager.informer<XenDomain>(resources.xenDomains, { fieldSelector: `status.host=${o.host}` });
    this.outgoing = this.manager.informer<XenMigration>(resources.xenMigrations, {
      fieldSelector: `status.sourceHost=${o.host}`,
    });
    this.incoming = this.manager.informer<XenMigration>(resources.xenMigrations, {
      fieldSelector: `status.targetHost=${o.host}`,
    });
    const policy: HostPolicy = {
      pathRoots: o.allowedPathRoots ?? DEFAULT_PATH_ROOTS,
      bridges: o.allowedBridges ?? DEFAULT_BRIDGES,
      pciDevices: o.allowedPciDevices ?? DEFAULT_PCI_DEVICES,
    };
    const dc = new DomainController({
      host: o.host,
      client: this.manager.client,
      hv: o.hypervisor,
      informer: this.domains,
      events: this.manager.events,
      // One manager for every agent's domain status: when a domain changes hosts, the new host's
      // agent takes over the same fields instead of sharing list entries with the old one.
      fieldManager: DOMAIN_STATUS_MANAGER,
      saveDir: o.saveDir ?? "/var/lib/kubexen/save",
      policy,
      log: this.log,
      hostInfo: () => this.hostInfo,
      migrating: (uuid) => this.migrating().has(uuid),
      resyncMs: 30_000,
      backoff: o.restartBackoff,
      cpuReportIntervalMs: o.cpuReportIntervalMs,
    });
    this.controller = new Controller({
      name: "domains",
      concurrency: o.workers ?? 4,
      logger: this.log,
      metrics: this.manager.metrics,
      reconcile: (key) => dc.reconcile(key),
    });
    this.controller.watch(this.domains);
    const byUUID = (uuid?: string) => this.domains.list().find((d) => d.status?.uuid === uuid);
    const remap = (ev: InformerEvent<XenMigration>) => {
      // The source reports progress each second: that alone changes nothing for the domain here.
      if (ev.type === "update" && !ev.resync && onlyProgressChanged(ev.old, ev.obj)) return undefined;
      const d = byUUID(ev.obj.status?.domainUUID);
      return d ? objectKey(d) : undefined;
    };
    this.controller.watch(this.outgoing, remap);
    this.controller.watch(this.incoming, remap);
    this.manager.add(this.controller);
    this.heartbeat = new Heartbeat(this.manager.client, {
      namespace: o.namespace ?? "kubexen-system",
      name: hostLeaseName(o.host),
      holder: o.host,
      intervalMs: o.heartbeatIntervalMs ?? 10_000,
      durationSeconds: o.leaseDurationSeconds ?? 40,
      log: this.log,
      onRenew: (at) => this.fencer?.renewed(at),
    });
    if (o.fencing) this.fencer = new Fencer({ ...o.fencing, log: this.log });
    if (o.migration) {
      const roles = new MigrationRoles({
        host: o.host,
        client: this.manager.client,
        hv: o.hypervisor,
        outgoing: this.outgoing,
        incoming: this.incoming,
        tls: () => {
          if (!this.migrationTls) throw new Error(`${o.host} has no migration certificate yet`);
          return this.migrationTls;
        },
        fieldManager: this.fieldManager,
        policy,
        events: this.manager.events,
        log: this.log,
      });
      const mc = new Controller({
        name: "migrations",
        concurrency: 4,
        logger: this.log,
        metrics: this.manager.metrics,
        reconcile: (key) => roles.reconcile(key),
      });
      mc.watch(this.outgoing);
      mc.watch(this.incoming);
      this.manager.add(mc);
      this.migrationRoles = roles;
    }
  }

  /**
   * Gets this host's migration certificate (given, or from the CSR API, retried until the operator
   * signs it) and then listens for migration streams. Domains are managed meanwhile: only
   * migrations wait for it.
   */
  private async startMigration(m: MigrationOptions, roles: MigrationRoles): Promise<void> {
    const dir = m.certDir ?? "/var/lib/kubexen/pki";
    if (m.cert) this.migrationTls = { ...m.cert, ca: m.ca };
    else {
      const hc = new HostCertificate({
        client: this.manager.client,
        host: this.host,
        dir,
        ca: m.ca,
        ips: m.ips,
        log: this.log,
      });
      this.hostCert = hc;
      hc.onRenew((kc) => {
        this.migrationTls = { ...kc, ca: m.ca };
        this.migrationServer?.updateCredentials(this.migrationTls);
        this.log.info("migration certificate renewed");
      });
      for (let wait = 5_000; !this.stopped; wait = Math.min(wait * 2, 60_000)) {
        try {
          this.migrationTls = { ...(await hc.start()), ca: m.ca };
          break;
        } catch (err) {
          this.log.error({ err: errorMessage(err), retryInMs: wait }, "no migration certificate: live migration waits");
          await sleep(wait, undefined, { signal: this.migrationAbort.signal }).catch(() => {});
        }
      }
    }
    if (this.stopped || !this.migrationTls) return;
    const used = new UsedTokens(join(dir, "used-tokens.json"));
    await used.load();
    const server = new MigrationServer({
      tls: this.migrationTls,
      host: this.host,
      used,
      admission: roles,
      onAccept: (name, stream) => roles.accept(name, stream),
      onDeny: (reason, peer) => this.log.warn({ reason, peer }, "refused a migration stream"),
    });
    await server.listen(m.listenPort, m.listenHost);
    this.migrationServer = server;
    // The endpoint goes out with the next report: peers reach this host only once it can take a stream.
    void this.report();
  }

  /** UUIDs of domains in a live migration to or from this host. */
  migrating(): Set<string> {
    const s = new Set<string>();
    for (const m of [...this.outgoing.list(), ...this.incoming.list()]) {
      const phase = m.status?.phase;
      if (m.status?.domainUUID && phase && !TERMINAL.has(phase) && phase !== "Pending" && phase !== "Scheduling")
        s.add(m.status.domainUUID);
    }
    return s;
  }

  get isFenced(): boolean {
    return this.fencer?.isFenced ?? false;
  }

  async start(): Promise<void> {
    this.hostInfo = await this.o.hypervisor.hostInfo();
    await registerHost(this.manager.client, this.host, this.fieldManager);
    await this.heartbeat.renew();
    this.heartbeat.start();
    this.fencer?.start();
    if (this.o.migration && this.migrationRoles) {
      this.migrationSetup = this.startMigration(this.o.migration, this.migrationRoles).catch((err) =>
        this.log.error({ err: errorMessage(err) }, "live migration unavailable on this host"),
      );
      // Given credentials listen at once; requested ones are awaited in the background.
      if (this.o.migration.cert) await this.migrationSetup;
    }
    this.unwatch = this.o.hypervisor.watch((e) => {
      const d = this.domains.list().find((x) => x.status?.uuid === e.uuid);
      if (d) this.controller.enqueue(objectKey(d));
    });
    await this.manager.start();
    await this.report();
    const every = this.o.reportIntervalMs ?? 10_000;
    const loop = () => {
      if (this.stopped) return;
      this.reportTimer = setTimeout(
        async () => {
          await this.report();
          loop();
        },
        nextReportMs(every, this.migrating().size),
      );
      this.reportTimer.unref();
    };
    loop();
    this.log.info(
      {
        host: this.host,
        driver: this.o.hypervisor.kind,
        fencing: !!this.fencer,
        allowedPathRoots: this.o.allowedPathRoots ?? DEFAULT_PATH_ROOTS,
        allowedBridges: this.o.allowedBridges ?? DEFAULT_BRIDGES,
        allowedPciDevices: this.o.allowedPciDevices ?? DEFAULT_PCI_DEVICES,
      },
      "node agent started",
    );
  }

  /** Writes the XenHost status from the hypervisor's view (one report at a time; none once stopped). */
  report(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const run = (this.reporting ?? Promise.resolve()).then(() => (this.stopped ? undefined : this.writeReport()));
    this.reporting = run;
    return run;
  }

  /** Stops host reports and waits for the one in flight: nothing the agent wrote before may land after. */
  private async stopReports(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reportTimer);
    await this.reporting;
  }

  private async writeReport(): Promise<void> {
    try {
      const [info, domains] = await Promise.all([this.o.hypervisor.hostInfo(), this.o.hypervisor.listDomains()]);
      this.hostInfo = info;
      const hostObj =
        this.self.get(this.host) ?? (await this.manager.client.get<XenHost>(resources.xenHosts, this.host));
      const at = Date.now();
      const migrating = this.migrating();
      const reclaimed = await this.reclaimMovedCopies(domains, migrating);
      const allowedPci = this.o.allowedPciDevices ?? DEFAULT_PCI_DEVICES;
      const { status, orphans, cpuTime } = hostStatus({
        // The scheduler is offered only devices this host would pass through.
        info: { ...info, pciAssignable: info.pciAssignable.filter((d) => pciAllowed(d, allowedPci)) },
        domains: domains.filter((d) => !reclaimed.has(d.uuid)),
        bound: this.domains.list(),
        migrating,
        endpoint: this.migrationServer ? this.o.migrationEndpoint : undefined,
        driver: this.o.hypervisor.kind,
        agentVersion: AGENT_VERSION,
        fencing: {
          enabled: !!this.o.fencing,
          windowSeconds: this.o.fencing
            ? Math.ceil((this.o.fencing.fenceTimeoutMs + this.o.fencing.watchdogTimeoutMs) / 1000)
            : 0,
        },
        previous: {
          ...this.previous,
          conditions: (hostObj.status as { conditions?: never[] } | undefined)?.conditions,
        },
      });
      this.previous = { cpuTime, at };
      const due =
        this.writtenAt === undefined ||
        at - this.writtenAt >= (this.o.reportMaxIntervalMs ?? 300_000) ||
        reportChanged(hostObj.status, status);
      if (due) {
        await this.manager.client.applyStatus(
          resources.xenHosts,
          statusApply("XenHost", { name: this.host }, status),
          this.fieldManager,
        );
        this.writtenAt = at;
      }
      await this.orphans.report(this.manager.events, hostObj, orphans);
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, "host report failed");
    }
  }

  /**
   * Destroys local copies of domains the cluster now runs on another host: a
   * host that comes back without having reset (fencing off, the administrator
   * set outOfService) must not keep a second copy. Runs before every report,
   * so before the host reports Ready after a return.
   */
  private async reclaimMovedCopies(domains: DomainInfo[], migrating: Set<string>): Promise<Set<string>> {
    const mine = new Set(this.domains.list().map((d) => d.status?.uuid));
    const reclaimed = new Set<string>();
    for (const dom of domains) {
      if (!dom.uuid || mine.has(dom.uuid) || migrating.has(dom.uuid) || dom.migration === "incoming") continue;
      const owners = await this.manager.client.list<XenDomain>(resources.xenDomains, {
        fieldSelector: `status.uuid=${dom.uuid}`,
      });
      const elsewhere = owners.items.find((x) => x.status?.host && x.status.host !== this.host);
      if (!elsewhere) continue;
      await this.o.hypervisor.destroy(dom.uuid);
      reclaimed.add(dom.uuid);
      this.log.warn(
        { uuid: dom.uuid, domain: objectKey(elsewhere), runsOn: elsewhere.status?.host },
        "destroyed a stale copy: the cluster runs this domain on another host",
      );
      await this.manager.events.record(
        elsewhere,
        "Warning",
        "StaleCopyDestroyed",
        "Reclaim",
        `${this.host} still had a copy (domid ${dom.domid}) after the domain moved to ${elsewhere.status?.host}; destroyed it`,
      );
    }
    return reclaimed;
  }

  /**
   * Stops cleanly: reconciles in flight finish, the watchdog is disarmed, domains keep running.
   * A disarmed host no longer resets itself, so before disarming the agent publishes that its
   * fencing is off: otherwise an agent down for longer than its fence window (a slow upgrade)
   * would let HA start its running domains elsewhere. If that cannot be published, the watchdog
   * stays armed: the host resets unless a new agent takes the watchdog over in time.
   */
  async stop(): Promise<void> {
    await this.stopReports();
    this.unwatch?.();
    this.heartbeat.stop();
    await this.stopMigration();
    let published = !this.fencer || this.fencer.isFenced;
    if (!published) {
      try {
        await this.manager.client.mergePatch(
          resources.xenHosts,
          this.host,
          undefined,
          { status: { fencing: { enabled: false, windowSeconds: 0 } } },
          "status",
        );
        published = true;
      } catch (err) {
        this.log.error(
          { err: errorMessage(err) },
          "could not publish that fencing is off: leaving the watchdog armed, the host resets unless an agent takes it over",
        );
      }
    }
    await this.manager.stop();
    if (published) this.fencer?.stop();
    else this.fencer?.abandon();
  }

  /** Stops everything at once without disarming the watchdog, as a crash of the agent would (tests). */
  async halt(): Promise<void> {
    this.fencer?.abandon();
    this.stopped = true;
    clearTimeout(this.reportTimer);
    this.unwatch?.();
    this.heartbeat.stop();
    await this.stopMigration();
    await this.manager.stop();
  }

  private async stopMigration(): Promise<void> {
    this.hostCert?.stop();
    this.migrationAbort.abort();
    await this.migrationSetup;
    await this.migrationServer?.close();
  }

  /**
   * Cuts the agent off the control plane, as a network partition would
   * (tests): no heartbeat, no reports, no watches or writes. The domains keep
   * running and the fencer keeps counting, so the host resets on time.
   */
  async partition(): Promise<void> {
    this.heartbeat.stop();
    this.stopped = true;
    clearTimeout(this.reportTimer);
    this.unwatch?.();
    await this.manager.stop();
  }
}
