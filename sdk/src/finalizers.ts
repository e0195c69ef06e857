// Finalizers and owner references. Finalizers change through JSON patches
// with `test` operations: a patch never creates an object (as an apply to a
// deleted one could), and never overwrites a concurrent change to the list
// (the test fails with 422 and the caller retries from fresh state).

import type { KubeClient } from "./client.ts";
import type { KubeObject, Resource } from "./resource.ts";
import type { Writer } from "./store.ts";

export function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  return obj.metadata.finalizers?.includes(finalizer) ?? false;
}

export async function addFinalizer(client: KubeClient, r: Resource, obj: KubeObject, finalizer: string): Promise<void> {
  if (hasFinalizer(obj, finalizer)) return;
  const { name, namespace, uid, resourceVersion, finalizers } = obj.metadata;
  if (!name) throw new Error(`addFinalizer ${r.kind}: object has no name`);
  const ops = finalizers?.length
    ? [
        { op: "test", path: "/metadata/uid", value: uid },
        { op: "test", path: `/metadata/finalizers/${finalizers.length - 1}`, value: finalizers[finalizers.length - 1] },
        { op: "add", path: "/metadata/finalizers/-", value: finalizer },
      ]
    : [
        { op: "test", path: "/metadata/resourceVersion", value: resourceVersion },
        { op: "add", path: "/metadata/finalizers", value: [finalizer] },
      ];
  await client.jsonPatch(r, name, namespace, ops);
}

export async function removeFinalizer(
  client: Pick<Writer, "jsonPatch">,
  r: Resource,
  obj: KubeObject,
  finalizer: string,
): Promise<void> {
  const i = obj.metadata.finalizers?.indexOf(finalizer) ?? -1;
  if (i < 0) return;
  const { name, namespace, uid } = obj.metadata;
  if (!name) throw new Error(`removeFinalizer ${r.kind}: object has no name`);
  await client.jsonPatch(r, name, namespace, [
    { op: "test", path: "/metadata/uid", value: uid },
    { op: "test", path: `/metadata/finalizers/${i}`, value: finalizer },
    { op: "remove", path: `/metadata/finalizers/${i}` },
  ]);
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** An owner reference to `owner`, marking it the controller (garbage collection deletes the dependent with it). */
export function ownerReference(owner: KubeObject, controller = true): OwnerReference {
  const { name, uid } = owner.metadata;
  if (!owner.apiVersion || !owner.kind || !name || !uid)
    throw new Error("ownerReference: owner needs apiVersion, kind, name and uid");
  return { apiVersion: owner.apiVersion, kind: owner.kind, name, uid, controller, blockOwnerDeletion: controller };
}
