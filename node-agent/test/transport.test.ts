// The migration stream between agents: mutual TLS from the cluster's
// migration CA, the operator's signed one-time token bound to the migration,
// its source and target (spent for good, across a restart of the target),
// refusals for the wrong token, certificate, host or migration, and a
// bandwidth limit.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { TLSSocket } from "node:tls";
import { signMigrationToken } from "@kubexen/crds";
import { issueHostCert, makeCa } from "@kubexen/e2e";
import { SimHypervisor } from "@kubexen/hypervisor";
import { connectMigration, MigrationServer, migrationCiphers, type TlsFiles, throttled } from "../src/transport.ts";
import { UsedTokens } from "../src/used-tokens.ts";

const UID = randomUUID();
const UID2 = "7d1f0b8e-2c4a-4e6b-9a3d-5f7e8c9b0a12";

describe("migration transport", () => {
  let dir: string;
  const tls: Record<string, TlsFiles> = {};
  let server: MigrationServer;
  let port: number;
  let caKey: string;
  let evilKey: string;
  let usedFile: string;
  /** A token as the operator signs it (with the CA's key unless told otherwise). */
  const token = (uid: string, source = "xen-a", target = "xen-b", o: { key?: string; expIn?: number } = {}) =>
    signMigrationToken(
      { migration: "ns/m", uid, source, target, exp: Math.floor(Date.now() / 1000) + (o.expIn ?? 600) },
      o.key ?? caKey,
    );
  const accepted: Array<[string, TLSSocket]> = [];
  const denied: string[] = [];
  const assigned = new Map<string, { uid: string; source: string; target: string; acceptable: boolean }>([
    ["ns/m1", { uid: UID, source: "xen-a", target: "xen-b", acceptable: true }],
    ["ns/m3", { uid: UID2, source: "xen-a", target: "xen-b", acceptable: true }],
  ]);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "kubexen-transport-"));
    const ca = await makeCa(dir, "migration-ca");
    const evilCa = await makeCa(dir, "evil-ca");
    const files = (p: { certFile: string; keyFile: string }, caFile: string): TlsFiles => ({
      cert: readFileSync(p.certFile),
      key: readFileSync(p.keyFile),
      ca: readFileSync(caFile),
    });
    for (const h of ["xen-a", "xen-b", "xen-c", "mallory"])
      tls[h] = files(await issueHostCert(dir, ca, h), ca.certFile);
    tls.evil = files(await issueHostCert(dir, evilCa, "xen-a"), ca.certFile);
    caKey = readFileSync(ca.keyFile, "utf8");
    evilKey = readFileSync(evilCa.keyFile, "utf8");
    usedFile = join(dir, "b", "used-tokens.json");
    const used = new UsedTokens(usedFile);
    await used.load();
    server = new MigrationServer({
      tls: tls["xen-b"] as TlsFiles,
      host: "xen-b",
      used,
      admission: { lookup: (m) => assigned.get(m) },
      onAccept: (m, s) => accepted.push([m, s]),
      onDeny: (reason) => denied.push(reason),
    });
    port = await server.listen(0, "127.0.0.1");
  });
  after(async () => {
    for (const [, s] of accepted) s.destroy();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const connectAs = (
    who: string,
    hello: { migration?: string; uid?: string; token?: string } = {},
    targetHost = "xen-b",
  ) =>
    connectMigration({
      endpoint: `127.0.0.1:${port}`,
      tls: tls[who] as TlsFiles,
      targetHost,
      hello: { migration: "ns/m1", uid: UID, token: token(UID), ...hello },
    });

  it("refuses a token the operator did not sign for this migration, source and target", async () => {
    await assert.rejects(
      connectAs("xen-a", { token: "0".repeat(64) }),
      /refused the migration: invalid token: not a migration token/,
    );
    // An HMAC or any key a host holds is no signature: only the CA key's holder can make one.
    await assert.rejects(
      connectAs("xen-a", { token: token(UID, "xen-a", "xen-b", { key: evilKey }) }),
      /invalid token: the token is not signed by the migration CA/,
    );
    await assert.rejects(
      connectAs("xen-a", { token: token("another-uid") }),
      /invalid token: the token is for another migration/,
    );
    await assert.rejects(
      connectAs("xen-a", { token: token(UID, "xen-c", "xen-b") }),
      /invalid token: the token is for xen-c to xen-b, not xen-a to xen-b/,
    );
    await assert.rejects(
      connectAs("xen-a", { token: token(UID, "xen-a", "xen-b", { expIn: -1 }) }),
      /invalid token: the token has expired/,
    );
  });

  it("refuses a certificate from another CA", async () => {
    const before = accepted.length;
    await assert.rejects(connectAs("evil"));
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(
      denied.some((d) => d.startsWith("TLS:")),
      `the server logged a TLS refusal: ${denied.join("; ")}`,
    );
    assert.equal(accepted.length, before);
  });

  it("refuses a valid certificate of another host, even with the right token", async () => {
    await assert.rejects(connectAs("mallory"), /certificate of mallory is not the migration's source xen-a/);
  });

  it("refuses a migration not assigned to this host, or not ready", async () => {
    await assert.rejects(connectAs("xen-a", { migration: "ns/other" }), /is not assigned to xen-b/);
    assigned.set("ns/m2", { uid: "u2", source: "xen-a", target: "xen-b", acceptable: false });
    await assert.rejects(
      connectAs("xen-a", { migration: "ns/m2", uid: "u2", token: token("u2") }),
      /not ready to receive/,
    );
  });

  it("refuses to talk to a target whose certificate names another host", async () => {
    await assert.rejects(connectAs("xen-a", {}, "xen-c"), /target certificate is for xen-b, expected xen-c/);
  });

  it("accepts the assigned migration from its source once, and carries a live migration", async () => {
    const a = new SimHypervisor({ hostname: "xen-a", memoryMiB: 4096 });
    const b = new SimHypervisor({ hostname: "xen-b", memoryMiB: 4096 });
    const uuid = randomUUID();
    await a.create({
      name: "ns.g",
      uuid,
      macs: [],
      spec: {
        type: "pvh",
        vcpus: 1,
        memory: "256Mi",
        boot: { kernel: "/k" },
        priority: 0,
        runStrategy: "Always",
        powerState: "Running",
        evictionStrategy: "LiveMigrate",
        terminationGracePeriodSeconds: 10,
      },
    });
    const src = await connectAs("xen-a");
    assert.equal(accepted.length, 1);
    const [name, dst] = accepted[0] as [string, TLSSocket];
    assert.equal(name, "ns/m1");
    const [stats, got] = await Promise.all([a.migrateSend(uuid, src), b.migrateReceive(dst)]);
    assert.equal(got.uuid, uuid);
    assert.ok(stats.bytes >= 256 * 2 ** 20);
    assert.equal(await a.getDomain(uuid), undefined);
    // The token is spent, and stays spent for a target that restarted (a new server, the same record).
    await assert.rejects(connectAs("xen-a"), /token already used/);
    const used = new UsedTokens(usedFile);
    await used.load();
    const restarted = new MigrationServer({
      tls: tls["xen-b"] as TlsFiles,
      host: "xen-b",
      used,
      admission: { lookup: (m) => assigned.get(m) },
      onAccept: (_m, s) => s.destroy(),
    });
    const p2 = await restarted.listen(0, "127.0.0.1");
    try {
      await assert.rejects(
        connectMigration({
          endpoint: `127.0.0.1:${p2}`,
          tls: tls["xen-a"] as TlsFiles,
          targetHost: "xen-b",
          hello: { migration: "ns/m1", uid: UID, token: token(UID) },
        }),
        /token already used/,
      );
    } finally {
      await restarted.close();
    }
  });

  it("keeps what either side sends before the other side's reader is attached", async () => {
    // xl's receiver greets the sender at once; the sender's xl connects to the stream later.
    const before = accepted.length;
    const src = await connectAs("xen-a", {
      migration: "ns/m3",
      uid: UID2,
      token: token(UID2),
    });
    src.write("header from the source");
    const [, dst] = accepted[before] as [string, TLSSocket];
    dst.write("banner from the target");
    await new Promise((r) => setTimeout(r, 300));
    const readAll = (s: TLSSocket, n: number) =>
      new Promise<string>((resolve) => {
        let got = "";
        s.on("data", (d: Buffer) => {
          got += d.toString();
          if (got.length >= n) resolve(got);
        });
      });
    assert.equal(await readAll(src, 22), "banner from the target");
    assert.equal(await readAll(dst, 22), "header from the source");
    src.destroy();
  });

  it("limits bandwidth when asked", async () => {
    const { createServer, connect } = await import("node:net");
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    const peer = new Promise<import("node:net").Socket>((r) => srv.once("connection", r));
    const sock = connect((srv.address() as { port: number }).port, "127.0.0.1");
    const sink = await peer;
    let got = 0;
    const received = new Promise<void>((r) => sink.on("end", () => r()));
    sink.on("data", (d: Buffer) => {
      got += d.length;
    });
    const t = throttled(sock, 4 * 2 ** 20);
    const t0 = Date.now();
    for (let i = 0; i < 32; i++)
      await new Promise<void>((r) => (t.write(Buffer.alloc(64 * 1024)) ? r() : t.once("drain", () => r())));
    await new Promise<void>((r) => t.end(() => r()));
    await received;
    const elapsed = Date.now() - t0;
    srv.close();
    assert.equal(got, 2 * 2 ** 20);
    assert.ok(elapsed >= 400, `2 MiB at 4 MiB/s took ${elapsed} ms: the limit was not applied`);
  });
});

describe("migration stream ciphers", () => {
  it("puts ChaCha20-Poly1305 first on a CPU without AES instructions, and leaves OpenSSL's choice otherwise", () => {
    const noAes = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov sse sse2 syscall nx lm svm";
    assert.match(migrationCiphers(noAes) ?? "", /^TLS_CHACHA20_POLY1305_SHA256:/);
    assert.equal(migrationCiphers(`${noAes} aes avx`), undefined);
    assert.equal(migrationCiphers("fpu aes"), undefined);
    // "aes" only as a whole flag: vaes alone is not AES-NI.
    assert.match(migrationCiphers("fpu vaes") ?? "", /CHACHA20/);
  });
});
