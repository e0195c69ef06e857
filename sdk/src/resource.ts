// Which API resource an object belongs to, and the REST paths to it.

export interface Resource {
  /** API group; "" for the core group. */
  group: string;
  version: string;
  /** Lower-case plural, as in the URL. */
  plural: string;
  kind: string;
  namespaced: boolean;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    deletionTimestamp?: string | Date;
    creationTimestamp?: string | Date;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export function apiVersionOf(r: Resource): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

export function resourcePath(r: Resource, namespace?: string, name?: string, subresource?: string): string {
  let p = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  if (r.namespaced && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${r.plural}`;
  if (name) p += `/${encodeURIComponent(name)}`;
  if (subresource) p += `/${subresource}`;
  return p;
}

/** The work-queue key of an object: namespace/name, or name when cluster-scoped. */
export function objectKey(obj: { metadata: { name?: string; namespace?: string } }): string {
  const { name = "", namespace } = obj.metadata;
  return namespace ? `${namespace}/${name}` : name;
}

export function splitKey(key: string): { namespace?: string; name: string } {
  const i = key.indexOf("/");
  return i < 0 ? { name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

export const coreResources = {
  leases: { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true },
  events: { group: "events.k8s.io", version: "v1", plural: "events", kind: "Event", namespaced: true },
  configmaps: { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true },
  secrets: { group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true },
  namespaces: { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false },
} satisfies Record<string, Resource>;
