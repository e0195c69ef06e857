// XenMigration: one live migration of one domain. Its spec is fixed at
// creation; the operator and the two agents drive its status.
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import { immutable, validations } from "./cel.ts";
import { conditions, ObjectMetaSchema, objectName, observedGeneration, time } from "./meta.ts";

export const MigrationPhaseSchema = z
  .enum(["Pending", "Scheduling", "PreparingTarget", "Transferring", "Succeeded", "Failed", "Aborted"])
  .describe(
    "Pending (admitted or waiting for a slot), Scheduling (choosing a target), PreparingTarget (target agent ready to receive), Transferring (memory moving), then Succeeded, Failed or Aborted.",
  );
export type MigrationPhase = z.infer<typeof MigrationPhaseSchema>;

export const MigrationReasonSchema = z
  .enum(["User", "Maintenance", "Balance", "Evacuation"])
  .describe("Why the migration exists.");

export const XenMigrationSpecSchema = z
  .object({
    domain: objectName("Name of the XenDomain to move, in this namespace."),
    targetHost: objectName(
      "XenHost to move it to; when absent, the operator chooses with the scheduler's rules.",
    ).optional(),
    reason: MigrationReasonSchema.default("User"),
    priority: z
      .int()
      .min(-1000000)
      .max(1000000)
      .default(0)
      .describe("Higher runs first when migrations queue for slots."),
    completionTimeoutPerGiB: z
      .int()
      .min(1)
      .optional()
      .describe("Seconds allowed per GiB of memory; overrides domain and policy."),
    progressTimeoutSeconds: z
      .int()
      .min(1)
      .optional()
      .describe("Seconds without progress before abort; overrides domain and policy."),
    bandwidthMiBps: z.int().min(1).optional().describe("Bandwidth limit in MiB/s; overrides domain and policy."),
  })
  .describe("What to move where. Immutable: create a new XenMigration to change it.")
  .meta(validations(immutable("spec")));

export const XenMigrationStatusSchema = z
  .object({
    phase: MigrationPhaseSchema.optional(),
    sourceHost: z.string().max(253).optional().describe("Host the domain leaves."),
    targetHost: z.string().max(253).optional().describe("Host the domain moves to."),
    domainUUID: z.string().max(36).optional().describe("The domain's Xen UUID."),
    memoryMiB: z.int().min(0).optional().describe("Memory to move, in MiB."),
    phaseTimestamps: z
      .record(z.string(), z.string())
      .optional()
      .describe("When each phase was entered (RFC 3339), keyed by phase name."),
    startTime: time("When the transfer started.").optional(),
    completionTime: time("When the migration ended.").optional(),
    deadline: time("When the completion timeout aborts it.").optional(),
    bandwidthMiBps: z
      .int()
      .min(0)
      .optional()
      .describe(
        "The bandwidth limit in force, in MiB/s (0: none): the migration's own, else the domain's, else the policy's.",
      ),
    autoConverge: z
      .boolean()
      .optional()
      .describe("Whether auto-converge is on for this migration: the domain's setting, else the policy's."),
    throttlePercent: z
      .int()
      .min(0)
      .max(99)
      .optional()
      .describe("The highest CPU throttle auto-converge applied to the guest, in percent."),
    bytesTransferred: z.int().min(0).optional().describe("Bytes sent so far."),
    rounds: z.int().min(0).optional().describe("Pre-copy rounds, where the hypervisor reports them."),
    dirtyPages: z.int().min(0).optional().describe("Pages dirtied in the last round."),
    downtimeMs: z.number().min(0).optional().describe("Time the guest was paused for stop-and-copy, in ms."),
    totalTimeMs: z.number().min(0).optional().describe("Transfer time from first byte to target running, in ms."),
    progressTime: time("When progress was last reported.").optional(),
    failureReason: z.string().max(4096).optional().describe("Why it failed or was aborted."),
    transferToken: z
      .string()
      .max(4096)
      .optional()
      .describe(
        "The operator's signed authorisation of the transfer (set with Transferring, gone when it ends): the target agent accepts the stream only from the source host's certificate with this token, which names this migration, its source and target, expires in minutes and is accepted once.",
      ),
    observedGeneration: observedGeneration(),
    conditions: conditions("Ready (ended, kstatus Current), Reconciling, Stalled."),
  })
  .describe("Progress and outcome.");

export const XenMigrationSchema = z.object({
  apiVersion: z.literal("kubexen.io/v1alpha1"),
  kind: z.literal("XenMigration"),
  metadata: ObjectMetaSchema,
  spec: XenMigrationSpecSchema,
  status: XenMigrationStatusSchema.optional(),
});
export type XenMigration = z.infer<typeof XenMigrationSchema>;
export type XenMigrationStatus = z.infer<typeof XenMigrationStatusSchema>;

/** The status fields the source rewrites while the stream runs (about once a second). */
export const MIGRATION_PROGRESS_FIELDS = [
  "bytesTransferred",
  "rounds",
  "dirtyPages",
  "throttlePercent",
  "progressTime",
] as const satisfies ReadonlyArray<keyof XenMigrationStatus>;

/**
 * Whether `obj` differs from `old` in its progress report alone (and in the metadata every write
 * changes): such a change tells a controller that watches migrations for other reasons (the
 * agent's domains, the balancer) nothing new, and costs a busy dom0 a reconcile each second.
 */
export function onlyProgressChanged(old: XenMigration, obj: XenMigration): boolean {
  const strip = (m: XenMigration) => {
    const status: Record<string, unknown> = { ...m.status };
    for (const f of MIGRATION_PROGRESS_FIELDS) delete status[f];
    const { resourceVersion: _rv, managedFields: _mf, ...metadata } = m.metadata;
    return { ...m, metadata, status };
  };
  return isDeepStrictEqual(strip(old), strip(obj));
}
