// One watch request: reads the API server's stream of JSON events line by
// line and gives each to `onEvent`. Ends when the server closes the stream,
// the signal aborts, or no byte arrives for `inactivityMs` (a silent,
// half-dead connection).
import type { KubeClient } from "./client.ts";
import { ApiError } from "./errors.ts";
import type { KubeObject } from "./resource.ts";

export interface WatchEvent<T extends KubeObject = KubeObject> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

export class WatchInactiveError extends Error {
  constructor(path: string, ms: number) {
    super(`watch ${path}: no data for ${ms} ms`);
    this.name = "WatchInactiveError";
  }
}

export interface WatchOptions {
  query: Record<string, string | number | boolean | undefined>;
  inactivityMs: number;
  signal: AbortSignal;
  onEvent: (ev: WatchEvent) => void;
}

/** Runs one watch to its end. Rejects with ApiError (for ERROR events too) or WatchInactiveError. */
export async function watchOnce(client: KubeClient, path: string, opts: WatchOptions): Promise<void> {
  const ctrl = new AbortController();
  const onAbort = () => ctrl.abort(opts.signal.reason);
  opts.signal.addEventListener("abort", onAbort, { once: true });
  let inactive = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      inactive = true;
      ctrl.abort(new WatchInactiveError(path, opts.inactivityMs));
    }, opts.inactivityMs);
    timer.unref();
  };
  try {
    arm();
    const res = await client.stream(path, { ...opts.query, watch: true }, ctrl.signal);
    const body = res.body;
    if (!body) return;
    const decoder = new TextDecoder();
    let buf = "";
    const reader = (body as ReadableStream<Uint8Array>).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      arm();
      buf += decoder.decode(value, { stream: true });
      let nl = buf.indexOf("\n");
      while (nl >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        nl = buf.indexOf("\n");
        if (!line) continue;
        const ev = JSON.parse(line) as WatchEvent;
        if (ev.type === "ERROR") {
          const st = ev.object as unknown as { code?: number; reason?: string; message?: string };
          await reader.cancel().catch(() => {});
          throw new ApiError("WATCH", path, st.code ?? 500, st.reason ?? "Error", st.message ?? "");
        }
        opts.onEvent(ev);
      }
    }
  } catch (err) {
    if (inactive) {
      client.resetConnections();
      throw new WatchInactiveError(path, opts.inactivityMs);
    }
    if (opts.signal.aborted) return;
    throw err;
  } finally {
    clearTimeout(timer);
    opts.signal.removeEventListener("abort", onAbort);
    ctrl.abort();
  }
}
