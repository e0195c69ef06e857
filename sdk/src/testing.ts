// In-memory fakes of a cache and of the API server's writes, for unit tests
// of controllers: seed a store, reconcile once, assert the writes. Stored
// objects are frozen, so a reconcile that mutates the cache fails loudly
// (KubeVirt's SanityExecute checks the same). No validation, no
// resourceVersion semantics: integration tests keep the real API server.
import type { ApplyOptions } from "./client.ts";
import type { InformerHandler } from "./informer.ts";
import { type KubeObject, objectKey, type Resource } from "./resource.ts";
import type { Store, Writer } from "./store.ts";

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object" && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

export class MemoryStore<T extends KubeObject> implements Store<T> {
  private readonly objects = new Map<string, T>();
  private readonly handlers = new Set<InformerHandler<T>>();

  constructor(objects: T[] = []) {
    for (const o of objects) this.objects.set(objectKey(o), deepFreeze(structuredClone(o)));
  }

  get(key: string): T | undefined {
    return this.objects.get(key);
  }
  list(): T[] {
    return [...this.objects.values()];
  }
  keys(): string[] {
    return [...this.objects.keys()];
  }
  addHandler(h: InformerHandler<T>): () => void {
    this.handlers.add(h);
    return () => this.handlers.delete(h);
  }

  /** Adds or replaces an object, as a watch event would, and tells the handlers. */
  set(obj: T): void {
    const key = objectKey(obj);
    const old = this.objects.get(key);
    const next = deepFreeze(structuredClone(obj));
    this.objects.set(key, next);
    for (const h of this.handlers) h(old ? { type: "update", old, obj: next } : { type: "add", obj: next });
  }

  /** Removes an object and tells the handlers. */
  delete(key: string): void {
    const old = this.objects.get(key);
    if (!old) return;
    this.objects.delete(key);
    for (const h of this.handlers) h({ type: "delete", obj: old });
  }
}

/** One call a controller made. */
export interface RecordedWrite {
  verb: "create" | "replace" | "mergePatch" | "jsonPatch" | "apply" | "delete";
  kind: string;
  name: string;
  namespace?: string;
  subresource?: string;
  fieldManager?: string;
  body?: unknown;
}

/**
 * Records every write and answers reads from the stores it is given (by kind). A write returns
 * the object it was given; `fail` makes the next write of a verb throw.
 */
export class RecordingWriter implements Writer {
  readonly writes: RecordedWrite[] = [];
  private readonly stores: Record<string, Store<KubeObject>>;
  private readonly failures = new Map<string, Error>();

  constructor(stores: Record<string, Store<KubeObject>> = {}) {
    this.stores = stores;
  }

  fail(verb: RecordedWrite["verb"], err: Error): void {
    this.failures.set(verb, err);
  }

  private record(w: RecordedWrite): void {
    const err = this.failures.get(w.verb);
    if (err) {
      this.failures.delete(w.verb);
      throw err;
    }
    this.writes.push(w);
  }

  private read<T extends KubeObject>(r: Resource, name: string, namespace?: string): T | undefined {
    return this.stores[r.kind]?.get(namespace ? `${namespace}/${name}` : name) as T | undefined;
  }

  async get<T extends KubeObject>(r: Resource, name: string, namespace?: string): Promise<T> {
    const o = this.read<T>(r, name, namespace);
    if (!o)
      throw Object.assign(new Error(`${r.kind} ${namespace ? `${namespace}/` : ""}${name} not found`), { status: 404 });
    return structuredClone(o);
  }
  async getOrUndefined<T extends KubeObject>(r: Resource, name: string, namespace?: string): Promise<T | undefined> {
    const o = this.read<T>(r, name, namespace);
    return o && structuredClone(o);
  }
  async list<T extends KubeObject>(
    r: Resource,
    opts: { namespace?: string } = {},
  ): Promise<{ items: T[]; metadata: { resourceVersion?: string } }> {
    const items = (this.stores[r.kind]?.list() ?? []) as T[];
    return {
      items: items
        .filter((o) => !opts.namespace || o.metadata.namespace === opts.namespace)
        .map((o) => structuredClone(o)),
      metadata: {},
    };
  }
  async create<T extends KubeObject>(r: Resource, obj: T, namespace = obj.metadata.namespace): Promise<T> {
    this.record({ verb: "create", kind: r.kind, name: obj.metadata.name ?? "", namespace, body: obj });
    return obj;
  }
  async replace<T extends KubeObject>(r: Resource, obj: T, subresource?: "status" | "approval"): Promise<T> {
    const { name = "", namespace } = obj.metadata;
    this.record({ verb: "replace", kind: r.kind, name, namespace, subresource, body: obj });
    return obj;
  }
  async mergePatch<T extends KubeObject>(
    r: Resource,
    name: string,
    namespace: string | undefined,
    patch: unknown,
    subresource?: "status",
  ): Promise<T> {
    this.record({ verb: "mergePatch", kind: r.kind, name, namespace, subresource, body: patch });
    return (this.read<T>(r, name, namespace) ?? { metadata: { name, namespace } }) as T;
  }
  async jsonPatch<T extends KubeObject>(
    r: Resource,
    name: string,
    namespace: string | undefined,
    ops: unknown[],
    subresource?: "status",
  ): Promise<T> {
    this.record({ verb: "jsonPatch", kind: r.kind, name, namespace, subresource, body: ops });
    return (this.read<T>(r, name, namespace) ?? { metadata: { name, namespace } }) as T;
  }
  async apply<T extends KubeObject>(r: Resource, obj: KubeObject, opts: ApplyOptions): Promise<T> {
    const { name = "", namespace } = obj.metadata;
    this.record({
      verb: "apply",
      kind: r.kind,
      name,
      namespace,
      subresource: opts.subresource,
      fieldManager: opts.fieldManager,
      body: obj,
    });
    return obj as T;
  }
  applyStatus<T extends KubeObject>(r: Resource, obj: KubeObject, fieldManager: string): Promise<T> {
    return this.apply<T>(r, obj, { fieldManager, subresource: "status" });
  }
  async delete(r: Resource, name: string, namespace?: string): Promise<void> {
    this.record({ verb: "delete", kind: r.kind, name, namespace });
  }
}
