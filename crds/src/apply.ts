// Typed objects for server-side apply, from the kinds' own types: the
// apiVersion and kind are written once here, and a status a controller
// applies is checked against the kind's schema-derived type.

import type { z } from "zod";
import { API_VERSION } from "./meta.ts";
import type { XenBalancer, XenBalancerSpecSchema } from "./xenbalancer.ts";
import type { XenDomainSpecSchema, XenDomainStatus } from "./xendomain.ts";
import type { XenHostSpecSchema, XenHostStatus } from "./xenhost.ts";
import type { XenMaintenanceSpecSchema, XenMaintenanceStatus } from "./xenmaintenance.ts";
import type { XenMigrationSpecSchema, XenMigrationStatus } from "./xenmigration.ts";
import type { XenMigrationPolicySpecSchema, XenMigrationPolicyStatus } from "./xenmigrationpolicy.ts";

/** Each kind's status type. */
export interface StatusOfKind {
  XenDomain: XenDomainStatus;
  XenHost: XenHostStatus;
  XenMigration: XenMigrationStatus;
  XenMaintenance: XenMaintenanceStatus;
  XenBalancer: NonNullable<XenBalancer["status"]>;
  XenMigrationPolicy: XenMigrationPolicyStatus;
}
export type KindName = keyof StatusOfKind;

/**
 * The object a status apply sends: only the fields given are this writer's (server-side apply
 * removes those it applied before and leaves out now).
 */
export function statusApply<K extends KindName>(
  kind: K,
  metadata: { name?: string; namespace?: string },
  status: Partial<StatusOfKind[K]>,
): { apiVersion: string; kind: K; metadata: { name?: string; namespace?: string }; status: Partial<StatusOfKind[K]> } {
  return { apiVersion: API_VERSION, kind, metadata, status };
}

/** Each kind's spec as a writer gives it (defaults not yet applied). */
export interface SpecInputOfKind {
  XenDomain: z.input<typeof XenDomainSpecSchema>;
  XenHost: z.input<typeof XenHostSpecSchema>;
  XenMigration: z.input<typeof XenMigrationSpecSchema>;
  XenMaintenance: z.input<typeof XenMaintenanceSpecSchema>;
  XenBalancer: z.input<typeof XenBalancerSpecSchema>;
  XenMigrationPolicy: z.input<typeof XenMigrationPolicySpecSchema>;
}

/** A new object of a kind (to create or apply), its spec checked against the kind's schema type. */
export function newObject<K extends KindName>(
  kind: K,
  metadata: { name?: string; namespace?: string; labels?: Record<string, string> },
  spec?: SpecInputOfKind[K],
): { apiVersion: string; kind: K; metadata: typeof metadata; spec?: SpecInputOfKind[K] } {
  return spec === undefined
    ? { apiVersion: API_VERSION, kind, metadata }
    : { apiVersion: API_VERSION, kind, metadata, spec };
}
