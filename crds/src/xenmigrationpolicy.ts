// XenMigrationPolicy: the cluster's migration limits and defaults (one,
// named default). Per-domain overrides live in XenDomain.spec.migration and
// per-migration ones in XenMigration.spec; the most specific wins.
import { z } from "zod";
import { conditions, ObjectMetaSchema, observedGeneration } from "./meta.ts";

export const XenMigrationPolicySpecSchema = z
  .object({
    parallelMigrationsPerCluster: z
      .int()
      .min(1)
      .max(1000)
      .default(5)
      .describe(
        "Migrations transferring at once in the cluster; as many more may be staged (target chosen and ready) to start the moment a transfer ends.",
      ),
    parallelOutboundMigrationsPerHost: z
      .int()
      .min(1)
      .max(64)
      .default(2)
      .describe(
        "Migrations sending from one host at once; as many more may be staged to start the moment one is done sending.",
      ),
    parallelInboundMigrationsPerHost: z
      .int()
      .min(1)
      .max(64)
      .default(2)
      .describe("Migrations arriving at one host at once, staged ones included (each holds room there)."),
    completionTimeoutPerGiB: z
      .int()
      .min(1)
      .max(86400)
      .default(150)
      .describe("Seconds allowed per GiB of guest memory before a migration is aborted."),
    progressTimeoutSeconds: z
      .int()
      .min(1)
      .max(86400)
      .default(150)
      .describe("Seconds without progress before a migration is aborted."),
    bandwidthMiBps: z.int().min(0).default(0).describe("Bandwidth limit per migration in MiB/s; 0 means unlimited."),
    autoConverge: z
      .boolean()
      .default(false)
      .describe("Throttle a guest whose pre-copy does not converge, through its credit2 cap."),
  })
  .describe("Limits and defaults.");

export const XenMigrationPolicyStatusSchema = z
  .object({
    observedGeneration: observedGeneration(),
    conditions: conditions("Ready: the operator applies this generation's limits to every migration it admits."),
  })
  .describe("Whether the operator has taken the policy into account.");

export const XenMigrationPolicySchema = z.object({
  apiVersion: z.literal("kubexen.io/v1alpha1"),
  kind: z.literal("XenMigrationPolicy"),
  metadata: ObjectMetaSchema,
  spec: XenMigrationPolicySpecSchema.prefault({}),
  status: XenMigrationPolicyStatusSchema.optional(),
});
export type XenMigrationPolicy = z.infer<typeof XenMigrationPolicySchema>;
export type XenMigrationPolicySpec = z.infer<typeof XenMigrationPolicySpecSchema>;
export type XenMigrationPolicyStatus = z.infer<typeof XenMigrationPolicyStatusSchema>;
