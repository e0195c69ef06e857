// XenMaintenance: one host in maintenance. Creating it cordons and drains the
// host; deleting it cancels or ends maintenance and uncordons.
import { z } from "zod";
import { immutable, validations } from "./cel.ts";
import { conditions, ObjectMetaSchema, objectName, observedGeneration, time } from "./meta.ts";

export const MaintenancePhaseSchema = z
  .enum(["Pending", "Waiting", "Draining", "Drained", "Blocked", "Cancelling"])
  .describe(
    "Pending (accepted), Waiting (another maintenance holds the capacity this one needs), Draining, Drained (host empty), Blocked (domains that cannot be evicted remain), Cancelling.",
  );

export const XenMaintenanceSpecSchema = z
  .object({
    host: objectName("The XenHost to put into maintenance.").meta(validations(immutable("host"))),
    reason: z.string().max(1024).optional().describe("Why, for the record (shown in events)."),
  })
  .describe("Which host.");

export const BlockedDomainSchema = z.object({
  namespace: z.string().max(63).describe("The XenDomain's namespace."),
  name: z.string().max(253).describe("The XenDomain's name."),
  reason: z.string().max(1024).describe("Why the domain cannot be evicted."),
});

export const XenMaintenanceStatusSchema = z
  .object({
    phase: MaintenancePhaseSchema.optional(),
    total: z.int().min(0).optional().describe("Domains on the host when draining started."),
    remaining: z.int().min(0).optional().describe("Domains still on the host."),
    migrated: z.int().min(0).optional().describe("Domains moved by live migration."),
    restarted: z.int().min(0).optional().describe("Domains stopped here and started elsewhere."),
    blocked: z.int().min(0).optional().describe("Domains that cannot be evicted."),
    restartedDomains: z
      .array(
        z.object({
          namespace: z.string().max(63).describe("The XenDomain's namespace."),
          name: z.string().max(253).describe("The XenDomain's name."),
        }),
      )
      .max(4096)
      .optional()
      .describe("The domains restarted elsewhere (recorded before each restart, so the count survives a crash)."),
    blockedDomains: z.array(BlockedDomainSchema).max(1024).optional().describe("Each blocked domain with why."),
    startTime: time("When draining started.").optional(),
    completionTime: time("When the host became empty.").optional(),
    eta: time("Estimated completion, from measured migration rates.").optional(),
    message: z.string().max(4096).optional().describe("What the drain is doing or waiting for."),
    observedGeneration: observedGeneration(),
    conditions: conditions("Ready (drained), Reconciling, Stalled."),
  })
  .describe("Progress of the drain.");

export const XenMaintenanceSchema = z.object({
  apiVersion: z.literal("kubexen.io/v1alpha1"),
  kind: z.literal("XenMaintenance"),
  metadata: ObjectMetaSchema,
  spec: XenMaintenanceSpecSchema,
  status: XenMaintenanceStatusSchema.optional(),
});
export type XenMaintenance = z.infer<typeof XenMaintenanceSchema>;
export type XenMaintenanceStatus = z.infer<typeof XenMaintenanceStatusSchema>;
