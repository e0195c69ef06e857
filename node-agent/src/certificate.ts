// This host's migration certificate, from the Kubernetes
// CertificateSigningRequest API: the agent makes its own key (it never leaves
// the host), asks the signer kubexen.io/migration for a certificate naming
// its host, and renews at two thirds of its lifetime. The operator approves
// and signs only a request from this host's own identity for its own name.
import { createPrivateKey, randomBytes, X509Certificate } from "node:crypto";
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { type KubeClient, type KubeObject, type Logger, makeCsr, type Resource } from "@kubexen/sdk";

export const MIGRATION_SIGNER = "kubexen.io/migration";
const csrs: Resource = {
  group: "certificates.k8s.io",
  version: "v1",
  plural: "certificatesigningrequests",
  kind: "CertificateSigningRequest",
  namespaced: false,
};

interface Csr extends KubeObject {
  status?: { certificate?: string; conditions?: Array<{ type: string; status: string; message?: string }> };
}

/** What the agent knows of the certificate it holds. */
export interface HeldCert {
  subjectCN?: string;
  notBeforeMs: number;
  notAfterMs: number;
  issuedByCa: boolean;
  matchesKey: boolean;
}

/** When a certificate is due for renewal: two thirds into its lifetime. */
export function renewAtMs(c: Pick<HeldCert, "notBeforeMs" | "notAfterMs">): number {
  return c.notBeforeMs + ((c.notAfterMs - c.notBeforeMs) * 2) / 3;
}

/** Whether the held certificate (if any) can serve this host now, or a new one must be asked for. */
export function certificateDecision(
  held: HeldCert | undefined,
  host: string,
  nowMs: number,
): { use: true; renewAtMs: number } | { use: false; why: string } {
  if (!held) return { use: false, why: "no certificate yet" };
  if (held.subjectCN !== host) return { use: false, why: `the certificate names ${held.subjectCN}, not ${host}` };
  if (!held.issuedByCa) return { use: false, why: "the certificate is not from the migration CA" };
  if (!held.matchesKey) return { use: false, why: "the certificate is not for the key held" };
  if (held.notAfterMs <= nowMs) return { use: false, why: "the certificate has expired" };
  const at = renewAtMs(held);
  if (at <= nowMs) return { use: false, why: "the certificate is due for renewal" };
  return { use: true, renewAtMs: at };
}

export interface HostCertificateOptions {
  client: KubeClient;
  host: string;
  /** Where tls.key and tls.crt are kept (the key mode 0600). */
  dir: string;
  /** The migration CA certificate, PEM. */
  ca: string | Buffer;
  /** IP addresses to name besides the host (informational: peers check the CN). */
  ips?: string[];
  /** Validity asked for, in seconds (the signer caps it). Default 7 days. */
  expirationSeconds?: number;
  log: Logger;
  /** How long to wait for the signer. Default 5 minutes. */
  timeoutMs?: number;
}

export interface KeyAndCert {
  key: string;
  cert: string;
}

export class HostCertificate {
  private readonly o: HostCertificateOptions;
  private current: KeyAndCert | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly listeners: Array<(kc: KeyAndCert) => void> = [];

  constructor(o: HostCertificateOptions) {
    this.o = o;
  }

  /** The key and certificate in force (after ensure()). */
  get keyAndCert(): KeyAndCert {
    if (!this.current) throw new Error("no migration certificate yet");
    return this.current;
  }

  /** Called with every renewed key and certificate. */
  onRenew(fn: (kc: KeyAndCert) => void): void {
    this.listeners.push(fn);
  }

  /** Uses the held certificate if it is good, else asks for one; then keeps it renewed until stop(). */
  async start(): Promise<KeyAndCert> {
    const at = await this.ensure();
    this.schedule(at);
    return this.keyAndCert;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(atMs: number): void {
    if (this.stopped) return;
    // setTimeout holds at most ~24.8 days; wake up earlier and decide again.
    const delay = Math.min(Math.max(1_000, atMs - Date.now()), 2 ** 31 - 1);
    this.timer = setTimeout(() => {
      this.ensure().then(
        (next) => this.schedule(next),
        (err: Error) => {
          this.o.log.error({ err: err.message }, "migration certificate renewal failed; retrying in 60 s");
          this.schedule(Date.now() + 60_000);
        },
      );
    }, delay);
    this.timer.unref();
  }

  /** Makes sure a good certificate is held; returns when it is due for renewal. */
  async ensure(): Promise<number> {
    const held = await this.readHeld();
    const d = certificateDecision(held?.facts, this.o.host, Date.now());
    if (d.use) {
      if (!this.current || this.current.cert !== held?.kc.cert) this.set(held?.kc as KeyAndCert);
      return d.renewAtMs;
    }
    this.o.log.info({ host: this.o.host, why: d.why }, "asking for a migration certificate");
    const kc = await this.request();
    await this.write(kc);
    this.set(kc);
    return renewAtMs(facts(kc, this.o.ca));
  }

  private set(kc: KeyAndCert): void {
    const first = !this.current;
    this.current = kc;
    if (!first) for (const fn of this.listeners) fn(kc);
  }

  private async readHeld(): Promise<{ kc: KeyAndCert; facts: HeldCert } | undefined> {
    try {
      const kc = {
        key: await readFile(join(this.o.dir, "tls.key"), "utf8"),
        cert: await readFile(join(this.o.dir, "tls.crt"), "utf8"),
      };
      return { kc, facts: facts(kc, this.o.ca) };
    } catch {
      return undefined;
    }
  }

  private async request(): Promise<KeyAndCert> {
    const { client, host } = this.o;
    const { csr, key } = await makeCsr(host, [host], this.o.ips ?? []);
    const name = `kubexen-migration-${host}-${randomBytes(4).toString("hex")}`;
    await client.create<Csr>(csrs, {
      apiVersion: "certificates.k8s.io/v1",
      kind: "CertificateSigningRequest",
      metadata: { name, labels: { "kubexen.io/host": host } },
      spec: {
        request: Buffer.from(csr).toString("base64"),
        signerName: MIGRATION_SIGNER,
        usages: ["digital signature", "key encipherment", "server auth", "client auth"],
        expirationSeconds: this.o.expirationSeconds ?? 7 * 86_400,
      },
    });
    const deadline = Date.now() + (this.o.timeoutMs ?? 300_000);
    for (let wait = 100; Date.now() < deadline && !this.stopped; wait = Math.min(wait * 2, 2_000)) {
      const cur = await client.get<Csr>(csrs, name);
      const denied = cur.status?.conditions?.find(
        (c) => (c.type === "Denied" || c.type === "Failed") && c.status === "True",
      );
      if (denied)
        throw new Error(`CertificateSigningRequest ${name} ${denied.type.toLowerCase()}: ${denied.message ?? ""}`);
      if (cur.status?.certificate) {
        const kc = { key, cert: Buffer.from(cur.status.certificate, "base64").toString("utf8") };
        const d = certificateDecision(facts(kc, this.o.ca), host, Date.now());
        if (!d.use)
          throw new Error(`CertificateSigningRequest ${name}: the certificate issued cannot be used: ${d.why}`);
        this.o.log.info({ csr: name, host }, "migration certificate issued");
        return kc;
      }
      await new Promise((r) => setTimeout(r, wait));
    }
    throw new Error(
      `CertificateSigningRequest ${name}: not signed in time (is the operator running with the migration CA?)`,
    );
  }

  private async write(kc: KeyAndCert): Promise<void> {
    await mkdir(this.o.dir, { recursive: true, mode: 0o700 });
    // The key first: a certificate on disk always has its key beside it.
    await atomicWrite(join(this.o.dir, "tls.key"), kc.key, 0o600);
    await atomicWrite(join(this.o.dir, "tls.crt"), kc.cert, 0o644);
  }
}

function facts(kc: KeyAndCert, ca: string | Buffer): HeldCert {
  const x = new X509Certificate(kc.cert);
  const cn = /^CN=(.*)$/m.exec(x.subject)?.[1];
  let issuedByCa = false;
  try {
    issuedByCa = x.verify(new X509Certificate(ca).publicKey);
  } catch {
    issuedByCa = false;
  }
  let matchesKey = false;
  try {
    matchesKey = x.checkPrivateKey(createPrivateKey(kc.key));
  } catch {
    matchesKey = false;
  }
  return {
    subjectCN: cn,
    notBeforeMs: Date.parse(x.validFrom),
    notAfterMs: Date.parse(x.validTo),
    issuedByCa,
    matchesKey,
  };
}

async function atomicWrite(file: string, text: string, mode: number): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, "w", mode);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}
