// The migration stream between agents: mutual TLS with certificates from the
// cluster's migration CA (each agent's certificate names its host), plus the
// transfer token the operator signed with the CA's key (which no host holds)
// for this migration, its source and its target. The target accepts a stream
// only for a migration the operator assigned to it, from the certificate of
// that migration's source host, with that token, once (even across restarts).
import { readFileSync } from "node:fs";
import { Duplex } from "node:stream";
import { connect, createServer, type PeerCertificate, type Server, type TLSSocket } from "node:tls";
import { verifyMigrationToken } from "@kubexen/crds";

export interface TlsFiles {
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer;
}

export interface MigrationHello {
  /** namespace/name of the XenMigration. */
  migration: string;
  uid: string;
  token: string;
}

/** Where the target records the tokens it accepted (used-tokens.ts). */
export interface UsedTokenRecord {
  has(uid: string): boolean;
  /** Records a use; false when the uid was used before. Resolves once the record is durable. */
  use(uid: string, expMs: number): Promise<boolean>;
}

/**
 * TLS 1.3 suites for a host's streams. OpenSSL prefers AES-GCM, which is fast only with the CPU's
 * AES instructions; without them ChaCha20-Poly1305 is about twice as fast in software (measured
 * in e2e/xenlab/README.md), as BoringSSL and Go choose on their own. Undefined: OpenSSL's defaults.
 */
export function migrationCiphers(cpuFlags: string): string | undefined {
  if (/\baes\b/.test(cpuFlags)) return undefined;
  return "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384";
}

let hostCiphers: { ciphers?: string } | undefined;
/** This host's choice, from the flags line of /proc/cpuinfo, read once. */
function localCiphers(): { ciphers?: string } {
  if (!hostCiphers) {
    let flags = "aes";
    try {
      flags = /^flags\s*:(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "aes";
    } catch {}
    const ciphers = migrationCiphers(flags);
    hostCiphers = ciphers ? { ciphers } : {};
  }
  return hostCiphers;
}

export const peerHost = (cert: PeerCertificate | undefined): string | undefined => {
  const cn = cert?.subject?.CN;
  return Array.isArray(cn) ? cn[0] : cn;
};

/** Reads one newline-terminated line, leaving the rest of the stream unread. */
function readLine(sock: TLSSocket, max = 4096, timeoutMs = 10_000): Promise<string> {
  // Read with 'readable' and read(), never 'data': once the listener is gone the stream is back in
  // its initial state, holding what follows the line until the hypervisor's reader attaches
  // (xl's receiver greets first, before the sender's xl is connected).
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const t = setTimeout(() => done(new Error("no handshake line in time")), timeoutMs);
    const onReadable = () => {
      for (let c = sock.read() as Buffer | null; c !== null; c = sock.read() as Buffer | null) {
        buf = Buffer.concat([buf, c]);
        const i = buf.indexOf(10);
        if (i >= 0) {
          const rest = buf.subarray(i + 1);
          if (rest.length) sock.unshift(rest);
          return done(undefined, buf.subarray(0, i).toString());
        }
        if (buf.length > max) return done(new Error("handshake line too long"));
      }
    };
    const onEnd = () => done(new Error("stream closed during the handshake"));
    function done(err?: Error, line?: string) {
      clearTimeout(t);
      sock.off("readable", onReadable);
      sock.off("end", onEnd);
      sock.off("close", onEnd);
      err ? reject(err) : resolve(line ?? "");
    }
    sock.on("readable", onReadable);
    sock.once("end", onEnd);
    sock.once("close", onEnd);
  });
}

export interface Admission {
  /** The migration as the target agent knows it, if assigned to it. */
  lookup(migration: string): { uid: string; source: string; target: string; acceptable: boolean } | undefined;
}

export interface MigrationServerOptions {
  /** This host's certificate and key, and the migration CA (which also checks transfer tokens). */
  tls: TlsFiles;
  host: string;
  used: UsedTokenRecord;
  admission: Admission;
  onAccept: (migration: string, stream: TLSSocket) => void;
  onDeny?: (reason: string, peer: string | undefined) => void;
}

/** The target side: listens for migration streams. */
export class MigrationServer {
  private readonly server: Server;
  private readonly o: MigrationServerOptions;
  private tls: TlsFiles;

  constructor(o: MigrationServerOptions) {
    this.o = o;
    this.tls = o.tls;
    const ciphers = localCiphers();
    this.server = createServer(
      {
        ...o.tls,
        // A receiver without AES instructions picks ChaCha20 even from a source that has them.
        ...ciphers,
        honorCipherOrder: ciphers.ciphers !== undefined,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: "TLSv1.3",
      },
      (sock) => void this.handle(sock),
    );
    this.server.on("tlsClientError", (err, sock) => {
      o.onDeny?.(`TLS: ${err.message}`, undefined);
      sock.destroy();
    });
  }

  /** A renewed certificate and key: new connections use them, open streams go on. */
  updateCredentials(tls: TlsFiles): void {
    this.tls = tls;
    this.server.setSecureContext({ ...tls, ...localCiphers(), minVersion: "TLSv1.3" });
  }

  listen(port: number, host = "0.0.0.0"): Promise<number> {
    return new Promise((resolve) =>
      this.server.listen(port, host, () => resolve((this.server.address() as { port: number }).port)),
    );
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }

  private async handle(sock: TLSSocket): Promise<void> {
    const peer = peerHost(sock.getPeerCertificate());
    const deny = (reason: string) => {
      this.o.onDeny?.(reason, peer);
      sock.end(`DENY ${reason}\n`);
    };
    let hello: MigrationHello;
    try {
      hello = JSON.parse(await readLine(sock)) as MigrationHello;
    } catch (err) {
      return deny(`bad handshake: ${(err as Error).message}`);
    }
    const m = this.o.admission.lookup(hello.migration);
    if (!m || m.target !== this.o.host) return deny(`migration ${hello.migration} is not assigned to ${this.o.host}`);
    if (!m.acceptable) return deny(`migration ${hello.migration} is not ready to receive`);
    if (m.uid !== hello.uid) return deny(`migration ${hello.migration} has another uid`);
    if (peer !== m.source) return deny(`certificate of ${peer ?? "nobody"} is not the migration's source ${m.source}`);
    const check = verifyMigrationToken(hello.token ?? "", this.tls.ca, m, Date.now());
    if (!check.ok) return deny(`invalid token: ${check.reason}`);
    // Durable before the stream is accepted: a restart in between cannot make the token usable again.
    let fresh: boolean;
    try {
      fresh = !this.o.used.has(m.uid) && (await this.o.used.use(m.uid, check.claims.exp * 1000));
    } catch (err) {
      return deny(`cannot record the token's use: ${(err as Error).message}`);
    }
    if (!fresh) return deny("token already used");
    sock.write("OK\n");
    // Not resumed: what the source sends before the hypervisor's reader attaches waits in the buffer.
    this.o.onAccept(hello.migration, sock);
  }
}

/** The source side: connects to the target agent and passes the handshake. */
export async function connectMigration(o: {
  endpoint: string;
  tls: TlsFiles;
  /** The target's host name, which its certificate must carry. */
  targetHost: string;
  hello: MigrationHello;
  timeoutMs?: number;
}): Promise<TLSSocket> {
  const i = o.endpoint.lastIndexOf(":");
  const host = o.endpoint.slice(0, i);
  const port = Number(o.endpoint.slice(i + 1));
  const sock = connect({
    host,
    port,
    ...o.tls,
    ...localCiphers(),
    minVersion: "TLSv1.3",
    servername: /^[\d.]+$/.test(host) ? undefined : host,
    // Identity is the host name in the certificate, not the address we dialled.
    checkServerIdentity: (_h, cert) =>
      peerHost(cert) === o.targetHost
        ? undefined
        : new Error(`target certificate is for ${peerHost(cert)}, expected ${o.targetHost}`),
  });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no TLS connection to ${o.endpoint} in time`)), o.timeoutMs ?? 10_000);
    sock.once("secureConnect", () => {
      clearTimeout(t);
      resolve();
    });
    sock.once("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
  sock.write(`${JSON.stringify(o.hello)}\n`);
  const answer = await readLine(sock).catch((e: Error) => `DENY ${e.message}`);
  if (answer !== "OK") {
    sock.destroy();
    throw new Error(`target ${o.targetHost} refused the migration: ${answer.replace(/^DENY /, "")}`);
  }
  // Not resumed: the target's first bytes wait until the hypervisor's reader attaches.
  return sock;
}

/** A Duplex over `inner` whose writes are paced to `bytesPerSec` (reads pass through). */
export function throttled(inner: Duplex, bytesPerSec: number): Duplex {
  let start = Date.now();
  let sent = 0;
  const outer = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      sent += chunk.length;
      const due = start + (sent / bytesPerSec) * 1000;
      const wait = due - Date.now();
      const go = () => (inner.write(chunk) ? cb() : inner.once("drain", () => cb()));
      if (wait > 0) setTimeout(go, wait);
      else {
        if (wait < -1000) {
          // Idle time does not turn into a burst.
          start = Date.now() - (sent / bytesPerSec) * 1000;
        }
        go();
      }
    },
    final(cb) {
      inner.end();
      cb();
    },
    read() {
      inner.resume();
    },
    destroy(err, cb) {
      inner.destroy(err ?? undefined);
      cb(err);
    },
  });
  inner.on("data", (d: Buffer) => {
    if (!outer.push(d)) inner.pause();
  });
  inner.on("end", () => outer.push(null));
  inner.on("error", (e) => outer.destroy(e));
  inner.on("close", () => {
    if (!outer.destroyed) outer.destroy();
  });
  return outer;
}
