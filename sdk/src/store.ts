// What a controller needs of a cache and of the API server, as interfaces:
// the informer and the client implement them, and sdk/testing's in-memory
// fakes do too, so a controller's reconcile runs in a unit test without an
// API server (KubeVirt's fake informers; controller-runtime's client).
import type { KubeClient } from "./client.ts";
import type { InformerHandler } from "./informer.ts";

/** A read-only cache of one kind, keyed by namespace/name (or name). */
export interface Store<T> {
  get(key: string): T | undefined;
  list(): T[];
  keys(): string[];
  addHandler(h: InformerHandler<T>): () => void;
}

/** The API calls a controller makes. */
export type Writer = Pick<
  KubeClient,
  | "get"
  | "getOrUndefined"
  | "list"
  | "create"
  | "replace"
  | "mergePatch"
  | "jsonPatch"
  | "apply"
  | "applyStatus"
  | "delete"
>;
