// Benchmark 2 on real Xen: the operator's overhead around a live migration
// between two Xen hosts under QEMU (e2e/src/xenlab). The migration stream is
// observed on the wire: tcpdump records the frames between the hosts (QEMU's
// UDP links on loopback) with this machine's clock, the same clock that stamps
// the XenMigration's creation and the watch that sees it Succeeded.
import { spawn } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { resources, type XenDomain, type XenHost, type XenMigration, xenDomainName } from "@kubexen/crds";
import { LabHost, startKubexenControlPlane, until, XenLab } from "@kubexen/e2e";
import { Operator } from "@kubexen/operator";
import { createLogger, Informer, KubeClient, SdkMetrics } from "@kubexen/sdk";
import { percentile } from "./machine.ts";
import { linkSegments, traceConnection } from "./pcap.ts";

const log = createLogger("bench-lab-migration", process.env.BENCH_LOG_LEVEL ?? "error");
const NS = "bench";
const MIN = 60_000;

export interface LabMigrationSample {
  /** XenMigration created → the source opened the stream's TCP connection (SYN). */
  toConnectMs: number;
  /** XenMigration created → the source's first byte on the wire (its TLS ClientHello). */
  toConnectionFirstByteMs: number;
  /** XenMigration created → the first byte of xl's stream (after the TLS and stream handshakes). */
  toFirstByteMs: number;
  /** The stream's last byte on the wire (either direction: the handover ends it) → Succeeded seen by a watch. */
  afterLastByteMs: number;
  /** Created → Succeeded seen. */
  totalMs: number;
  /** First byte of xl's stream to the last byte on the wire. */
  wireMs: number;
  /** Bytes the source sent on the wire (TLS records of xl's stream). */
  wireBytes: number;
  /** The migration's own report. */
  bytesTransferred: number;
  downtimeMs: number;
  transferMs: number;
}

/** Migrates a 128 MiB PVH guest back and forth between two lab hosts (once small, 5 times full: each takes minutes on emulated hosts). */
export async function runLabMigration(size: "small" | "full", dir: string) {
  const n = size === "full" ? 5 : 1;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const cp = await startKubexenControlPlane([NS]);
  let lab: XenLab | undefined;
  let op: Operator | undefined;
  let watcher: Informer<XenMigration> | undefined;
  let capture: ReturnType<typeof spawn> | undefined;
  const samples: LabMigrationSample[] = [];
  try {
    lab = await XenLab.start(cp, { dir: join(dir, "lab"), progress: (m) => log.info(m) });
    const client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
    // Emulated hosts move memory two orders of magnitude slower than real ones (e2e/xenlab/README.md).
    await client.create(resources.xenMigrationPolicies, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenMigrationPolicy",
      metadata: { name: "default" },
      spec: { completionTimeoutPerGiB: 4800 },
    });
    op = new Operator({
      kubeConfig: cp.kubeConfig(),
      migrationCa: lab.migrationCa,
      leaderElection: false,
      logger: log,
    });
    await op.start();
    const metrics = new SdkMetrics();
    watcher = new Informer<XenMigration>(new KubeClient(cp.kubeConfig(), { metrics }), resources.xenMigrations, {
      logger: log,
      metrics,
    });
    const succeededAt = new Map<string, number>();
    const failed = new Map<string, string>();
    watcher.addHandler((ev) => {
      const name = ev.obj.metadata.name ?? "";
      const phase = ev.obj.status?.phase;
      if (phase === "Succeeded" && !succeededAt.has(name)) succeededAt.set(name, Date.now());
      if (phase === "Failed" || phase === "Aborted") failed.set(name, `${phase}: ${ev.obj.status?.failureReason}`);
    });
    watcher.start();
    await watcher.synced();

    await client.create(resources.xenDomains, {
      apiVersion: "kubexen.io/v1alpha1",
      kind: "XenDomain",
      metadata: { name: "guest", namespace: NS },
      spec: {
        type: "pvh",
        vcpus: 1,
        memory: "128Mi",
        boot: { kernel: "/guest/vmlinuz", ramdisk: "/guest/initrd", cmdline: "console=hvc0" },
      },
    });
    const xd = () => client.get<XenDomain>(resources.xenDomains, "guest", NS);
    const onHost = async () => {
      const d = await xd();
      return d.status?.phase === "Running" ? d.status.host : undefined;
    };
    await until("the guest running", async () => !!(await onHost()), 5 * MIN, 1000);
    const first = lab.host((await onHost()) ?? "");
    // Migrated once it has booted, as a working guest would be.
    await first.waitConsole(LabHost.guestLine(xenDomainName(NS, "guest"), "kubexen-guest alive 3"), 5 * MIN);

    const pcap = join(dir, "links.pcap");
    const ports = lab.hosts.flatMap((h) => h.linkPorts);
    capture = spawn(
      "tcpdump",
      [
        "-i",
        "lo",
        "-n",
        "-s",
        "128",
        "-B",
        "32768",
        "-U",
        "-w",
        pcap,
        `udp and (${ports.map((p) => `port ${p}`).join(" or ")})`,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let captureErr = "";
    await new Promise<void>((resolve, reject) => {
      capture?.stderr?.on("data", (c: Buffer) => {
        captureErr += c.toString();
        if (captureErr.includes("listening on")) resolve();
      });
      capture?.on("error", reject);
      capture?.on("exit", (code) => reject(new Error(`tcpdump exited ${code}: ${captureErr.trim()}`)));
    });

    const runs: Array<{ name: string; created: number; source: string; target: string; port: number }> = [];
    for (let i = 0; i < n; i++) {
      const source = lab.host((await onHost()) ?? "");
      const target = lab.hosts.find((h) => h.name !== source.name);
      if (!target) throw new Error("the lab has one host");
      const endpoint = (await client.get<XenHost>(resources.xenHosts, target.name)).status?.migrationEndpoint ?? "";
      const port = Number(endpoint.split(":").at(-1));
      if (!port) throw new Error(`XenHost ${target.name} advertises no migration endpoint (${endpoint})`);
      const name = `m${i}`;
      const created = Date.now();
      await client.create(resources.xenMigrations, {
        apiVersion: "kubexen.io/v1alpha1",
        kind: "XenMigration",
        metadata: { name, namespace: NS },
        spec: { domain: "guest", targetHost: target.name },
      });
      await until(`${name} ended`, () => succeededAt.has(name) || failed.has(name), 10 * MIN, 20);
      if (!succeededAt.has(name)) throw new Error(`${name} did not succeed: ${failed.get(name)}`);
      runs.push({ name, created, source: source.addr, target: target.addr, port });
      await until("running on the target", async () => (await onHost()) === target.name, 2 * MIN, 200);
    }
    // Let the last frames reach the capture's file, then stop it (it flushes on SIGINT).
    await new Promise((r) => setTimeout(r, 1000));
    const exited = new Promise<void>((r) => capture?.once("exit", () => r()));
    capture.kill("SIGINT");
    await exited;
    capture = undefined;

    const segs = linkSegments(pcap);
    for (const r of runs) {
      const m = await client.get<XenMigration>(resources.xenMigrations, r.name, NS);
      const c = traceConnection(segs, r.source, r.target, r.port, r.created);
      if (!c) throw new Error(`${r.name}: no stream from ${r.source} to ${r.target}:${r.port} in the capture`);
      const done = succeededAt.get(r.name) ?? 0;
      samples.push({
        toConnectMs: c.syn - r.created,
        toConnectionFirstByteMs: c.firstPayload - r.created,
        toFirstByteMs: (c.bulkStart ?? Number.NaN) - r.created,
        afterLastByteMs: done - c.lastPayload,
        totalMs: done - r.created,
        wireMs: c.lastPayload - (c.bulkStart ?? Number.NaN),
        wireBytes: c.clientBytes,
        bytesTransferred: m.status?.bytesTransferred ?? 0,
        downtimeMs: m.status?.downtimeMs ?? 0,
        transferMs: m.status?.totalTimeMs ?? 0,
      });
    }
    // BENCH_KEEP_CAPTURE=1 keeps it (test-artifacts/) for a look with the parser or tcpdump -r.
    if (!process.env.BENCH_KEEP_CAPTURE) rmSync(pcap, { force: true });
    const accel = lab.accel;
    const stats = (f: (s: LabMigrationSample) => number) => {
      const xs = samples.map(f);
      return { p50: percentile(xs, 50), p95: percentile(xs, 95), max: Math.max(...xs) };
    };
    return {
      migrations: n,
      accel,
      memoryMiB: 128,
      toConnectMs: stats((s) => s.toConnectMs),
      toConnectionFirstByteMs: stats((s) => s.toConnectionFirstByteMs),
      toFirstByteMs: stats((s) => s.toFirstByteMs),
      afterLastByteMs: stats((s) => s.afterLastByteMs),
      wireMs: stats((s) => s.wireMs),
      totalMs: stats((s) => s.totalMs),
      samples,
    };
  } finally {
    capture?.kill("SIGKILL");
    await watcher?.stop();
    await op?.stop();
    await lab?.stop();
    await cp.stop();
  }
}
