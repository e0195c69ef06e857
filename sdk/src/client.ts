// A small REST client for the Kubernetes API on client-node's KubeConfig
// (which owns credentials: certificates, tokens, exec plugins, in-cluster
// config). It speaks JSON, supports server-side apply on objects and
// subresources, and counts every request.
import { createHash } from "node:crypto";
import type { RequestOptions as HttpsOptions } from "node:https";
import { HttpMethod, type KubeConfig, RequestContext } from "@kubernetes/client-node";
import { type Dispatcher, fetch } from "undici";
import { sleep } from "./backoff.ts";
import { ApiError } from "./errors.ts";
import { defaultMetrics, type SdkMetrics } from "./metrics.ts";
import { apiVersionOf, type KubeObject, type Resource, resourcePath } from "./resource.ts";

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  signal?: AbortSignal;
}

export interface ObjectList<T> {
  items: T[];
  metadata: { resourceVersion?: string; continue?: string };
}

export interface ApplyOptions {
  fieldManager: string;
  /** Take ownership of fields another manager owns (controllers should). Default true. */
  force?: boolean;
  subresource?: "status";
}

/** As client-go: a request the server asks to repeat (Retry-After) is sent again, up to 10 times. */
const MAX_RETRIES = 10;

/**
 * How long the server asks us to wait before sending this request again, or undefined to take the
 * answer as it is. 429 means the request was not processed (the watch cache is initializing, or
 * priority and fairness turned it away), so any request may be repeated; a 5xx may have been
 * processed, so only a GET is.
 */
export function retryAfterMs(method: string, status: number, retryAfter: string | null): number | undefined {
  if (status !== 429 && !(status >= 500 && method === "GET")) return undefined;
  if (retryAfter === null || !/^\d+$/.test(retryAfter.trim())) return undefined;
  return Math.min(Number(retryAfter), 60) * 1000;
}

export class KubeClient {
  readonly kubeConfig: KubeConfig;
  readonly server: string;
  private readonly metrics: SdkMetrics;
  private readonly defaultTimeoutMs: number;
  private readonly userAgent: string;
  /** Requests sent, for benchmarks (API requests per object). */
  requestCount = 0;
  /**
   * One connection pool for every request while the TLS material stays the same:
   * client-node builds a new pool per request, which costs a TLS handshake (and
   * an idle socket) each time.
   */
  private pool: { key: string; dispatcher: Promise<Dispatcher | undefined> } | undefined;

  constructor(kubeConfig: KubeConfig, opts: { metrics?: SdkMetrics; timeoutMs?: number; userAgent?: string } = {}) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig has no current cluster");
    this.kubeConfig = kubeConfig;
    this.server = cluster.server.replace(/\/$/, "");
    this.metrics = opts.metrics ?? defaultMetrics();
    this.defaultTimeoutMs = opts.timeoutMs ?? 30_000;
    this.userAgent = opts.userAgent ?? "opkit";
  }

  private async send(method: string, path: string, opts: RequestOptions): Promise<Response> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    // Credentials each time (tokens from exec plugins and files expire); the pool only when they change.
    const auth: HttpsOptions = {};
    await this.kubeConfig.applyToHTTPSOptions(auth);
    const headers: Record<string, string> = {
      ...Object.fromEntries(Object.entries(auth.headers ?? {}).map(([k, v]) => [k, String(v)])),
      accept: "application/json",
      "user-agent": this.userAgent,
    };
    if (auth.auth) headers.authorization = `Basic ${Buffer.from(auth.auth).toString("base64")}`;
    const dispatcher = await this.dispatcher(auth);
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
      headers["content-type"] = opts.contentType ?? "application/json";
    }
    const timeout = opts.timeoutMs ?? this.defaultTimeoutMs;
    const deadline = timeout > 0 ? AbortSignal.timeout(timeout) : undefined;
    const signals = [opts.signal, deadline].filter((s): s is AbortSignal => !!s);
    const signal = signals.length ? AbortSignal.any(signals) : undefined;
    let waiting = false;
    try {
      for (let attempt = 0; ; attempt++) {
        this.requestCount++;
        const res = await fetch(url, { method, headers, body, dispatcher, signal });
        this.metrics.apiRequests.inc({ verb: method, code: String(res.status) });
        const wait =
          attempt < MAX_RETRIES ? retryAfterMs(method, res.status, res.headers.get("retry-after")) : undefined;
        if (wait === undefined) return res as unknown as Response;
        await res.body?.cancel();
        waiting = true;
        await sleep(wait, signal);
        signal?.throwIfAborted();
        waiting = false;
      }
    } catch (err) {
      this.metrics.apiRequests.inc({ verb: method, code: "error" });
      // A deadline passed on the wire (not while waiting as asked): the connection may be half dead.
      if (deadline?.aborted && !opts.signal?.aborted && !waiting) this.resetConnections();
      throw new Error(`${method} ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Drops the connection pool; the next request opens a new connection. For a
   * silent, half-dead connection (a request timed out, a watch heard nothing):
   * HTTP/2 carries every request on one connection, so it would hold them all.
   */
  resetConnections(): void {
    const old = this.pool?.dispatcher;
    this.pool = undefined;
    void old?.then((d) => d?.destroy()).catch(() => {});
  }

  private async dispatcher(tls: HttpsOptions): Promise<Dispatcher | undefined> {
    const h = createHash("sha256");
    for (const v of [tls.ca, tls.cert, tls.key, tls.pfx, tls.servername, tls.rejectUnauthorized])
      h.update(v === undefined ? "\0" : Buffer.isBuffer(v) ? v : String(v)).update("\0");
    const key = h.digest("hex");
    if (this.pool?.key === key) return this.pool.dispatcher;
    const old = this.pool?.dispatcher;
    // client-node builds the pool (proxies and SOCKS included) from the same credentials.
    const ctx = new RequestContext(this.server, HttpMethod.GET);
    // Set before any await: requests arriving meanwhile share this pool instead of racing for their own.
    this.pool = {
      key,
      dispatcher: this.kubeConfig
        .applySecurityAuthentication(ctx)
        .then(() => ctx.getDispatcher() as Dispatcher | undefined),
    };
    // Requests and watches still on the old pool finish there.
    void old?.then((d) => d?.close()).catch(() => {});
    return this.pool.dispatcher;
  }

  /** One request; JSON answer, or ApiError with the Status the server sent. */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, path, opts);
    const text = await res.text();
    if (res.status >= 200 && res.status < 300) return (text ? JSON.parse(text) : undefined) as T;
    let status: { reason?: string; message?: string; details?: unknown } = {};
    try {
      status = JSON.parse(text);
    } catch {
      status = { message: text.slice(0, 500) };
    }
    throw new ApiError(method, path, res.status, status.reason ?? res.statusText, status.message ?? "", status.details);
  }

  /** A streaming GET (watch): the response, for the caller to read and cancel. */
  async stream(path: string, query: RequestOptions["query"], signal: AbortSignal): Promise<Response> {
    const res = await this.send("GET", path, { query, signal, timeoutMs: 0 });
    if (res.status !== 200) {
      const text = await res.text();
      let status: { reason?: string; message?: string } = {};
      try {
        status = JSON.parse(text);
      } catch {
        status = { message: text.slice(0, 500) };
      }
      throw new ApiError("GET", path, res.status, status.reason ?? res.statusText, status.message ?? "");
    }
    return res;
  }

  get<T extends KubeObject>(r: Resource, name: string, namespace?: string): Promise<T> {
    return this.request<T>("GET", resourcePath(r, namespace, name));
  }

  /** The object, or undefined when it does not exist. */
  async getOrUndefined<T extends KubeObject>(r: Resource, name: string, namespace?: string): Promise<T | undefined> {
    try {
      return await this.get<T>(r, name, namespace);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return undefined;
      throw e;
    }
  }

  list<T extends KubeObject>(r: Resource, opts: ListOptions = {}): Promise<ObjectList<T>> {
    return this.request<ObjectList<T>>("GET", resourcePath(r, opts.namespace), {
      signal: opts.signal,
      query: {
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        limit: opts.limit,
        continue: opts.continue,
        resourceVersion: opts.resourceVersion,
      },
    });
  }

  /** Every page of a list, with the resourceVersion of the (consistent) snapshot. */
  async listAll<T extends KubeObject>(r: Resource, opts: ListOptions = {}): Promise<ObjectList<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let rv: string | undefined;
    do {
      const page = await this.list<T>(r, { ...opts, limit: opts.limit ?? 500, continue: cont });
      items.push(...page.items);
      cont = page.metadata.continue || undefined;
      rv = page.metadata.resourceVersion;
    } while (cont);
    return { items, metadata: { resourceVersion: rv } };
  }

  create<T extends KubeObject>(r: Resource, obj: T, namespace = obj.metadata.namespace): Promise<T> {
    return this.request<T>("POST", resourcePath(r, namespace), { body: withTypeMeta(r, obj) });
  }

  /** PUT with the object's resourceVersion: fails with 409 Conflict if it changed meanwhile. */
  replace<T extends KubeObject>(r: Resource, obj: T, subresource?: "status" | "approval"): Promise<T> {
    const { name, namespace } = obj.metadata;
    if (!name) throw new Error(`replace ${r.kind}: object has no name`);
    return this.request<T>("PUT", resourcePath(r, namespace, name, subresource), { body: withTypeMeta(r, obj) });
  }

  mergePatch<T extends KubeObject>(
    r: Resource,
    name: string,
    namespace: string | undefined,
    patch: unknown,
    subresource?: "status",
  ): Promise<T> {
    return this.request<T>("PATCH", resourcePath(r, namespace, name, subresource), {
      body: patch,
      contentType: "application/merge-patch+json",
    });
  }

  jsonPatch<T extends KubeObject>(
    r: Resource,
    name: string,
    namespace: string | undefined,
    ops: unknown[],
    subresource?: "status",
  ): Promise<T> {
    return this.request<T>("PATCH", resourcePath(r, namespace, name, subresource), {
      body: ops,
      contentType: "application/json-patch+json",
    });
  }

  /**
   * Server-side apply: the fields in `obj` become this field manager's; fields
   * it applied before and leaves out now are removed. With subresource
   * "status", only status is applied.
   */
  apply<T extends KubeObject>(r: Resource, obj: KubeObject, opts: ApplyOptions): Promise<T> {
    const { name, namespace } = obj.metadata;
    if (!name) throw new Error(`apply ${r.kind}: object has no name`);
    return this.request<T>("PATCH", resourcePath(r, namespace, name, opts.subresource), {
      body: withTypeMeta(r, obj),
      contentType: "application/apply-patch+yaml",
      query: { fieldManager: opts.fieldManager, force: opts.force ?? true },
    });
  }

  applyStatus<T extends KubeObject>(r: Resource, obj: KubeObject, fieldManager: string): Promise<T> {
    return this.apply<T>(r, obj, { fieldManager, subresource: "status" });
  }

  async delete(
    r: Resource,
    name: string,
    namespace?: string,
    opts: { uid?: string; resourceVersion?: string; propagationPolicy?: string; gracePeriodSeconds?: number } = {},
  ): Promise<void> {
    const preconditions =
      opts.uid || opts.resourceVersion ? { uid: opts.uid, resourceVersion: opts.resourceVersion } : undefined;
    await this.request("DELETE", resourcePath(r, namespace, name), {
      body: {
        apiVersion: "v1",
        kind: "DeleteOptions",
        preconditions,
        propagationPolicy: opts.propagationPolicy,
        gracePeriodSeconds: opts.gracePeriodSeconds,
      },
    });
  }
}

function withTypeMeta<T extends KubeObject>(r: Resource, obj: T): T {
  return { ...obj, apiVersion: obj.apiVersion ?? apiVersionOf(r), kind: obj.kind ?? r.kind };
}

/** Retries `fn` while it fails with 409 Conflict (read-modify-write loops), up to `attempts` times. */
export async function retryOnConflict<T>(fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 409) || i >= attempts) throw e;
      await new Promise((r) => setTimeout(r, 10 * 2 ** i * (0.5 + Math.random())));
    }
  }
}
