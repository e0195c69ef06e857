// X.509 for operators: a self-signed serving certificate, certificate
// requests for the Kubernetes CertificateSigningRequest API, and a small CA
// that signs them. WebCrypto does the cryptography; @peculiar/x509 the encoding.
import { createPrivateKey, createPublicKey, type KeyObject, webcrypto } from "node:crypto";
import { isIP } from "node:net";
// @peculiar/x509 resolves its ASN.1 codecs through tsyringe, which needs the Reflect metadata API.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

export interface ServingCert {
  cert: string;
  key: string;
}

type CreateParams = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0];
type WebCrypto = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[1];
type Keys = CreateParams["keys"];
const crypto = webcrypto as unknown as WebCrypto & typeof webcrypto;
const EC = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const RSA = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as const;

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString("base64");
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, "$&\n")}-----END ${label}-----\n`;
}

function serial(): string {
  // Positive, 128 random bits (RFC 5280 allows up to 20 octets).
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString("hex")
    .replace(/^[89a-f]/, "1");
}

async function ecKeys(): Promise<Keys> {
  return (await webcrypto.subtle.generateKey(EC, true, ["sign", "verify"])) as unknown as Keys;
}

async function privatePem(keys: Keys): Promise<string> {
  return pem(
    "PRIVATE KEY",
    await webcrypto.subtle.exportKey("pkcs8", keys.privateKey as unknown as webcrypto.CryptoKey),
  );
}

const sans = (dns: string[], ips: string[]) =>
  new x509.SubjectAlternativeNameExtension([
    ...dns.map((value) => ({ type: "dns" as const, value })),
    ...ips.map((value) => ({ type: "ip" as const, value })),
  ]);

/** A self-signed P-256 certificate for these DNS names and IP addresses, valid for a year. */
export async function selfSignedCert(commonName: string, dns: string[], ips: string[]): Promise<ServingCert> {
  const keys = await ecKeys();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serial(),
      name: [{ CN: [commonName] }],
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 365 * 86_400_000),
      signingAlgorithm: EC,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        sans(dns, ips),
      ],
    },
    crypto,
  );
  return { cert: cert.toString("pem"), key: await privatePem(keys) };
}

/** A new P-256 key and a PKCS#10 request for it: subject CN, DNS and IP names. */
export async function makeCsr(commonName: string, dns: string[], ips: string[]): Promise<{ csr: string; key: string }> {
  const keys = await ecKeys();
  const req = await x509.Pkcs10CertificateRequestGenerator.create(
    { name: [{ CN: [commonName] }], keys, signingAlgorithm: EC, extensions: [sans(dns, ips)] },
    crypto,
  );
  return { csr: req.toString("pem"), key: await privatePem(keys) };
}

/** What a PKCS#10 request asks for, with its signature checked; undefined when it does not parse. */
export interface ParsedCsr {
  signatureValid: boolean;
  subject: { cn?: string; others: string[] };
  dnsNames: string[];
  ips: string[];
  otherSans: number;
  key: { kind: "EC"; curve: string } | { kind: "RSA"; bits: number } | { kind: "other"; name: string };
}

const CURVES: Record<string, string> = { prime256v1: "P-256", secp384r1: "P-384", secp521r1: "P-521" };

export async function parseCsr(text: string): Promise<ParsedCsr | undefined> {
  let req: x509.Pkcs10CertificateRequest;
  try {
    req = new x509.Pkcs10CertificateRequest(text);
  } catch {
    return undefined;
  }
  const names = req.subjectName.toJSON();
  const cns: string[] = [];
  const others: string[] = [];
  for (const rdn of names)
    for (const [type, values] of Object.entries(rdn)) (type === "CN" ? cns : others).push(...values.map(String));
  if (cns.length > 1) others.push(...cns.slice(1).map((c) => `CN=${c}`));
  const dnsNames: string[] = [];
  const ips: string[] = [];
  let otherSans = 0;
  for (const ext of req.extensions) {
    if (!(ext instanceof x509.SubjectAlternativeNameExtension)) continue;
    for (const n of ext.names.items) {
      if (n.type === "dns") dnsNames.push(n.value);
      else if (n.type === "ip" && isIP(n.value)) ips.push(n.value);
      else otherSans++;
    }
  }
  const pub: KeyObject = createPublicKey(req.publicKey.toString("pem"));
  const d = pub.asymmetricKeyDetails ?? {};
  const key: ParsedCsr["key"] =
    pub.asymmetricKeyType === "ec"
      ? { kind: "EC", curve: CURVES[d.namedCurve ?? ""] ?? d.namedCurve ?? "unknown" }
      : pub.asymmetricKeyType === "rsa"
        ? { kind: "RSA", bits: d.modulusLength ?? 0 }
        : { kind: "other", name: pub.asymmetricKeyType ?? "unknown" };
  let signatureValid = false;
  try {
    signatureValid = await req.verify(crypto);
  } catch {
    signatureValid = false;
  }
  return { signatureValid, subject: { cn: cns[0], others }, dnsNames, ips, otherSans, key };
}

/** A CA that signs client-and-server certificates from requests (PEM cert and key; the key PKCS#1, SEC1 or PKCS#8). */
export class CertificateAuthority {
  private readonly cert: x509.X509Certificate;
  private readonly key: webcrypto.CryptoKey;
  private readonly alg: typeof EC | typeof RSA;

  private constructor(cert: x509.X509Certificate, key: webcrypto.CryptoKey, alg: typeof EC | typeof RSA) {
    this.cert = cert;
    this.key = key;
    this.alg = alg;
  }

  static async load(certPem: string, keyPem: string): Promise<CertificateAuthority> {
    const cert = new x509.X509Certificate(certPem);
    const k = createPrivateKey(keyPem);
    const alg = k.asymmetricKeyType === "rsa" ? RSA : EC;
    if (k.asymmetricKeyType !== "rsa" && k.asymmetricKeyDetails?.namedCurve !== "prime256v1")
      throw new Error("the CA key must be RSA or EC P-256");
    const der = k.export({ type: "pkcs8", format: "der" });
    const key = await webcrypto.subtle.importKey("pkcs8", der, alg, false, ["sign"]);
    return new CertificateAuthority(cert, key, alg);
  }

  /** The CA certificate, PEM. */
  get certificate(): string {
    return this.cert.toString("pem");
  }

  /**
   * The issued certificate's authority key identifier must equal the CA's own subject key
   * identifier where it has one: verifiers find the issuer by it, and CAs made elsewhere (Go,
   * OpenSSL) derive theirs in ways a recomputation does not always match.
   */
  private async authorityKeyId(): Promise<x509.AuthorityKeyIdentifierExtension> {
    const ski = this.cert.getExtension(x509.SubjectKeyIdentifierExtension);
    if (ski) return new x509.AuthorityKeyIdentifierExtension(ski.keyId, false);
    return x509.AuthorityKeyIdentifierExtension.create(this.cert, false, crypto);
  }

  /** Signs a request for the given subject and names (taken from the request only after it was reviewed). */
  async sign(
    csrPem: string,
    o: { commonName: string; dns: string[]; ips: string[]; seconds: number },
  ): Promise<string> {
    const req = new x509.Pkcs10CertificateRequest(csrPem);
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber: serial(),
        subject: [{ CN: [o.commonName] }],
        issuer: this.cert.subjectName,
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + o.seconds * 1000),
        signingAlgorithm: this.alg,
        publicKey: req.publicKey,
        signingKey: this.key as unknown as CryptoKeyLike,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
          sans(o.dns, o.ips),
          await this.authorityKeyId(),
        ],
      },
      crypto,
    );
    return cert.toString("pem");
  }
}
type CryptoKeyLike = Parameters<typeof x509.X509CertificateGenerator.create>[0] extends infer P
  ? P extends { signingKey: infer K }
    ? K
    : never
  : never;
