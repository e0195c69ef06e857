// Who may read an endpoint: the caller's bearer token is checked by the API
// server (TokenReview), then what it may do (SubjectAccessReview on the
// endpoint's non-resource path), as kube-rbac-proxy and controller-runtime's
// secure metrics do. Answers are cached briefly so a scrape every few seconds
// costs the API server two requests per cache period, not two per scrape.
import { createHash } from "node:crypto";
import type { KubeClient } from "./client.ts";
import { errorMessage } from "./errors.ts";
import type { KubeObject, Resource } from "./resource.ts";

export const tokenReviews: Resource = {
  group: "authentication.k8s.io",
  version: "v1",
  plural: "tokenreviews",
  kind: "TokenReview",
  namespaced: false,
};
export const subjectAccessReviews: Resource = {
  group: "authorization.k8s.io",
  version: "v1",
  plural: "subjectaccessreviews",
  kind: "SubjectAccessReview",
  namespaced: false,
};

/** What the API server said of a token. */
export interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  error?: string;
}
/** What the API server said of a request by that user. */
export interface AccessReviewStatus {
  allowed?: boolean;
  denied?: boolean;
  reason?: string;
  evaluationError?: string;
}

export type AccessDecision =
  | { code: 200; user: string }
  | { code: 401; reason: string }
  | { code: 403; user: string; reason: string };

/** The bearer token of an Authorization header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer +([^\s]+) *$/i.exec(header ?? "");
  return m?.[1];
}

/** The answer to a request, from the two reviews (the second absent when the first failed). */
export function decideAccess(token: TokenReviewStatus | undefined, access?: AccessReviewStatus): AccessDecision {
  if (!token?.authenticated || !token.user?.username)
    return { code: 401, reason: token?.error ? `token not accepted: ${token.error}` : "token not accepted" };
  const user = token.user.username;
  if (!access) return { code: 403, user, reason: "no access review" };
  if (access.allowed && !access.denied) return { code: 200, user };
  return { code: 403, user, reason: access.reason || access.evaluationError || "not allowed" };
}

export interface AccessReviewerOptions {
  /** How long an answer is reused. Default 10 s (the API server's own delegated authenticator caches as long). */
  ttlMs?: number;
  /** Answers kept at most; the oldest is dropped first. */
  maxEntries?: number;
  now?: () => number;
}

/** Checks bearer tokens against the API server for one non-resource path and verb. */
export class AccessReviewer {
  private readonly cache = new Map<string, { at: number; decision: AccessDecision }>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly client: KubeClient;

  constructor(client: KubeClient, o: AccessReviewerOptions = {}) {
    this.client = client;
    this.ttlMs = o.ttlMs ?? 10_000;
    this.maxEntries = o.maxEntries ?? 256;
    this.now = o.now ?? Date.now;
  }

  async review(authorization: string | undefined, path: string, verb = "get"): Promise<AccessDecision> {
    const token = bearerToken(authorization);
    if (!token) return { code: 401, reason: "a bearer token is required" };
    // Keyed by a hash: the cache must not hold usable credentials.
    const key = createHash("sha256").update(`${verb} ${path} ${token}`).digest("hex");
    const hit = this.cache.get(key);
    if (hit && this.now() - hit.at < this.ttlMs) return hit.decision;
    const decision = await this.ask(token, path, verb);
    this.cache.delete(key);
    this.cache.set(key, { at: this.now(), decision });
    while (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value as string);
    return decision;
  }

  private async ask(token: string, path: string, verb: string): Promise<AccessDecision> {
    const tr = await this.client.create<KubeObject & { status?: TokenReviewStatus }>(tokenReviews, {
      metadata: {},
      spec: { token },
    } as KubeObject);
    const first = decideAccess(tr.status);
    if (first.code === 401) return first;
    const u = tr.status?.user ?? {};
    const sar = await this.client.create<KubeObject & { status?: AccessReviewStatus }>(subjectAccessReviews, {
      metadata: {},
      spec: {
        user: u.username,
        uid: u.uid,
        groups: u.groups,
        extra: u.extra,
        nonResourceAttributes: { path, verb },
      },
    } as KubeObject);
    return decideAccess(tr.status, sar.status);
  }
}

/** Runs a review, turning an API failure into a 503 the caller can retry. */
export async function reviewOrUnavailable(
  reviewer: AccessReviewer,
  authorization: string | undefined,
  path: string,
): Promise<AccessDecision | { code: 503; reason: string }> {
  try {
    return await reviewer.review(authorization, path);
  } catch (err) {
    return { code: 503, reason: `cannot review access: ${errorMessage(err)}` };
  }
}
