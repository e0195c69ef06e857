// The signer kubexen.io/migration: approves and signs the migration
// certificates agents request for their own host (csr-plan.ts decides), and
// denies every other request for this signer with the reason. Only the
// operator holds the migration CA's key; hosts hold their own key pair and
// the CA certificate.
import {
  type CertificateAuthority,
  type Informer,
  type KubeClient,
  type KubeObject,
  type Logger,
  parseCsr,
  type ReconcileResult,
  type Resource,
} from "@kubexen/sdk";
import type { OperatorContext } from "./context.ts";
import { type CsrFacts, MIGRATION_SIGNER, reviewCsr } from "./csr-plan.ts";

export const certificateSigningRequests: Resource = {
  group: "certificates.k8s.io",
  version: "v1",
  plural: "certificatesigningrequests",
  kind: "CertificateSigningRequest",
  namespaced: false,
};

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastUpdateTime?: string;
  lastTransitionTime?: string;
}

export interface Csr extends KubeObject {
  spec: {
    request: string;
    signerName: string;
    username?: string;
    extra?: Record<string, string[]>;
    usages?: string[];
    expirationSeconds?: number;
  };
  status?: { conditions?: Condition[]; certificate?: string };
}

export interface CsrSignerDeps {
  client: KubeClient;
  csrs: Informer<Csr>;
  /** The migration CA, loaded once (its key is read and imported at start). */
  ca: Promise<CertificateAuthority>;
  /** The namespace of the agents' identities. */
  namespace: string;
  log: Logger;
}

/** The facts reviewCsr decides on, read from the object. */
export async function csrFacts(csr: Csr): Promise<{ facts: CsrFacts; pem: string }> {
  const cond = (t: string) => (csr.status?.conditions ?? []).some((c) => c.type === t && c.status === "True");
  const pem = Buffer.from(csr.spec.request ?? "", "base64").toString("utf8");
  return {
    pem,
    facts: {
      signerName: csr.spec.signerName,
      username: csr.spec.username ?? "",
      extra: csr.spec.extra,
      usages: csr.spec.usages ?? [],
      expirationSeconds: csr.spec.expirationSeconds,
      approved: cond("Approved"),
      denied: cond("Denied"),
      failed: cond("Failed"),
      issued: !!csr.status?.certificate,
      request: await parseCsr(pem),
    },
  };
}

export class CsrSigner {
  private readonly d: CsrSignerDeps;
  constructor(d: CsrSignerDeps) {
    this.d = d;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const csr = this.d.csrs.get(key);
    if (!csr || csr.spec.signerName !== MIGRATION_SIGNER) return undefined;
    const { facts, pem } = await csrFacts(csr);
    const d = reviewCsr(facts, this.d.namespace);
    const name = csr.metadata.name;
    const now = new Date().toISOString();
    const condition = (type: string, reason: string, message: string): Condition => ({
      type,
      status: "True",
      reason,
      message,
      lastUpdateTime: now,
      lastTransitionTime: now,
    });
    switch (d.action) {
      case "none":
        return undefined;
      case "deny":
        await this.d.client.replace(
          certificateSigningRequests,
          {
            ...csr,
            status: {
              ...csr.status,
              conditions: [...(csr.status?.conditions ?? []), condition("Denied", "NotOwnHost", d.reason)],
            },
          },
          "approval",
        );
        this.d.log.warn({ csr: name, requester: facts.username, reason: d.reason }, "migration certificate denied");
        return undefined;
      case "approve":
        await this.d.client.replace(
          certificateSigningRequests,
          {
            ...csr,
            status: {
              ...csr.status,
              conditions: [
                ...(csr.status?.conditions ?? []),
                condition("Approved", "AgentOwnHost", `the agent of ${d.host} asks for its own migration certificate`),
              ],
            },
          },
          "approval",
        );
        // Signed on the next pass, from the approved object the watch brings.
        return { requeueAfterMs: 10 };
      case "sign": {
        const r = facts.request;
        const cert = await (await this.d.ca).sign(pem, {
          commonName: d.host,
          dns: [d.host],
          ips: r?.ips ?? [],
          seconds: d.validitySeconds,
        });
        await this.d.client.replace(
          certificateSigningRequests,
          { ...csr, status: { ...csr.status, certificate: Buffer.from(cert).toString("base64") } },
          "status",
        );
        this.d.log.info(
          { csr: name, host: d.host, days: Math.round(d.validitySeconds / 864) / 100 },
          "migration certificate issued",
        );
        return undefined;
      }
    }
  }
}

/** The signer kubexen.io/migration: agents' certificate requests, with the migration CA (the operator's alone). */
export function setupCsrSigner(c: OperatorContext, ca: Promise<CertificateAuthority>): CsrSigner {
  const csrs = c.mgr.informer<Csr>(certificateSigningRequests, {
    fieldSelector: `spec.signerName=${MIGRATION_SIGNER}`,
  });
  const signer = new CsrSigner({
    client: c.mgr.client,
    csrs,
    ca,
    namespace: c.namespace,
    log: c.log,
  });
  c.mgr
    .controller("migration-certificates", (k) => signer.reconcile(k))
    .for(csrs)
    .complete();
  return signer;
}
