// Which migration certificates the operator issues. Each host's agent asks
// for its own through a CertificateSigningRequest for the signer
// kubexen.io/migration; the API server records who asked (spec.username,
// unforgeable), and the operator approves and signs only a request from an
// agent identity for its own host name: the certificate's CN is the identity
// the migration stream trusts, so no host can obtain another's.

export const MIGRATION_SIGNER = "kubexen.io/migration";
/** Longest validity the operator grants; agents renew at two thirds of it. */
export const MAX_CERT_SECONDS = 30 * 86_400;
export const DEFAULT_CERT_SECONDS = 7 * 86_400;
const MIN_CERT_SECONDS = 600;
const NODE_NAME = "authentication.kubernetes.io/node-name";

const ALLOWED_USAGES = new Set(["digital signature", "key encipherment", "server auth", "client auth"]);
const REQUIRED_USAGES = ["server auth", "client auth"];

/** What a CertificateSigningRequest says, read by the signer (the parsed request included). */
export interface CsrFacts {
  signerName: string;
  username: string;
  extra?: Record<string, string[]>;
  usages: string[];
  expirationSeconds?: number;
  approved: boolean;
  denied: boolean;
  failed: boolean;
  issued: boolean;
  /** The PKCS#10 request, parsed; undefined when it does not parse. */
  request?: {
    signatureValid: boolean;
    /** Subject attributes other than one CN, for example O or a second CN. */
    subject: { cn?: string; others: string[] };
    dnsNames: string[];
    ips: string[];
    /** SANs of other kinds (URI, email, ...). */
    otherSans: number;
    key: { kind: "EC"; curve: string } | { kind: "RSA"; bits: number } | { kind: "other"; name: string };
  };
}

export type CsrDecision =
  | { action: "none"; why: string }
  | { action: "approve"; host: string }
  | { action: "sign"; host: string; validitySeconds: number }
  | { action: "deny"; reason: string };

/** The host an agent identity acts for, as the admission policy reads it, or undefined. */
export function agentHostOf(username: string, extra: Record<string, string[]> | undefined, namespace: string) {
  const sa = `system:serviceaccount:${namespace}:`;
  if (username.startsWith(`${sa}kubexen-host-`)) return username.slice(`${sa}kubexen-host-`.length) || undefined;
  if (username === `${sa}kubexen-agent`) return extra?.[NODE_NAME]?.[0] || undefined;
  return undefined;
}

/** What to do with one request, given that the signer runs for agents of `namespace`. */
export function reviewCsr(f: CsrFacts, namespace: string): CsrDecision {
  if (f.signerName !== MIGRATION_SIGNER) return { action: "none", why: `signer ${f.signerName}` };
  if (f.denied || f.failed) return { action: "none", why: "denied or failed" };
  if (f.issued) return { action: "none", why: "already issued" };
  const reject = checkRequest(f, namespace);
  if (typeof reject === "string") return { action: "deny", reason: reject };
  if (!f.approved) return { action: "approve", host: reject.host };
  const want = f.expirationSeconds ?? DEFAULT_CERT_SECONDS;
  return {
    action: "sign",
    host: reject.host,
    validitySeconds: Math.min(MAX_CERT_SECONDS, Math.max(MIN_CERT_SECONDS, want)),
  };
}

function checkRequest(f: CsrFacts, namespace: string): string | { host: string } {
  const host = agentHostOf(f.username, f.extra, namespace);
  if (!host)
    return `${f.username} is not a kubexen agent identity (kubexen-agent with a node-bound token, or kubexen-host-<host>, in ${namespace})`;
  const r = f.request;
  if (!r) return "spec.request is not a PEM certificate request";
  if (!r.signatureValid) return "the request's signature does not verify";
  if (r.subject.cn !== host)
    return `the subject CN must be the requester's host ${host}, not ${r.subject.cn ?? "empty"}`;
  if (r.subject.others.length > 0) return `the subject may hold only CN, not ${r.subject.others.join(", ")}`;
  const strangers = r.dnsNames.filter((d) => d !== host);
  if (strangers.length > 0) return `DNS names other than ${host} are not allowed: ${strangers.join(", ")}`;
  if (r.otherSans > 0) return "only DNS and IP subject alternative names are allowed";
  if (r.key.kind === "EC" && !["P-256", "P-384"].includes(r.key.curve)) return `EC curve ${r.key.curve} is not allowed`;
  if (r.key.kind === "RSA" && r.key.bits < 2048) return `an RSA key of ${r.key.bits} bits is too short (2048 at least)`;
  if (r.key.kind === "other") return `key algorithm ${r.key.name} is not allowed (EC P-256/P-384 or RSA)`;
  const bad = f.usages.filter((u) => !ALLOWED_USAGES.has(u));
  if (bad.length > 0) return `usages not allowed: ${bad.join(", ")}`;
  const missing = REQUIRED_USAGES.filter((u) => !f.usages.includes(u));
  if (missing.length > 0) return `usages must include ${missing.join(" and ")}`;
  return { host };
}
