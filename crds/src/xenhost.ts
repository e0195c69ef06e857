// XenHost: one Xen host (its dom0), registered and kept current by the node
// agent that runs there. Users write spec.unschedulable and labels.
import { z } from "zod";
import { conditions, ObjectMetaSchema, observedGeneration, PCI_BDF_PATTERN, time } from "./meta.ts";
import { GuestTypeSchema } from "./xendomain.ts";

const mib = (description: string) => z.int().min(0).describe(description);

export const HostResourcesSchema = z.object({
  cpus: z.int().min(0).describe("Physical CPUs (threads) for guests."),
  memoryMiB: mib("Memory in MiB."),
  numaNodes: z.int().min(0).optional().describe("NUMA nodes."),
});

export const HostCapabilitiesSchema = z.object({
  guestTypes: z
    .array(GuestTypeSchema)
    .max(3)
    .describe("Guest types this host can run.")
    .meta({ "x-kubernetes-list-type": "set" }),
  hap: z
    .boolean()
    .describe("Hardware-assisted paging (EPT/NPT): needed for pvh and hvm guests and their live migration."),
  shadow: z.boolean().describe("Shadow paging compiled into Xen: needed for pv guests to live-migrate."),
  liveMigratable: z
    .array(GuestTypeSchema)
    .max(3)
    .describe("Guest types that can live-migrate from and to this host.")
    .meta({ "x-kubernetes-list-type": "set" }),
  pciAssignable: z
    .array(z.string().regex(new RegExp(PCI_BDF_PATTERN)))
    .max(256)
    .optional()
    .describe("PCI devices ready for passthrough (xl pci-assignable-list).")
    .meta({ "x-kubernetes-list-type": "set" }),
  maxVcpusPerDomain: z.int().min(1).optional().describe("Most vCPUs one domain may have on this host."),
});

export const OrphanSchema = z.object({
  name: z.string().max(256).describe("Xen domain name."),
  uuid: z.string().max(36).optional().describe("Xen UUID."),
  domid: z.int().min(0).optional().describe("Xen domain ID."),
  memoryMiB: z.int().min(0).optional().describe("Memory it holds, in MiB."),
});

export const XenHostSpecSchema = z
  .object({
    unschedulable: z.boolean().default(false).describe("Cordon: no new domains are placed here (running ones stay)."),
    outOfService: z
      .boolean()
      .optional()
      .describe(
        "Set by the administrator once the host is known to be powered off: its domains restart elsewhere at once, without waiting for the fence window. Needed for hosts whose agent runs without fencing.",
      ),
  })
  .describe("What the administrator sets.");

export const XenHostStatusSchema = z
  .object({
    capacity: HostResourcesSchema.optional().describe("What the machine has."),
    allocatable: HostResourcesSchema.optional().describe(
      "What guests may use: capacity less dom0's share and reserves.",
    ),
    allocated: z
      .object({
        vcpus: z.int().min(0).describe("vCPUs of the domains placed here."),
        memoryMiB: mib("Memory of the domains placed here, in MiB."),
      })
      .optional()
      .describe("What the domains bound here take."),
    freeMemoryMiB: mib("Free memory Xen reports now (xl info free_memory), in MiB.").optional(),
    dom0: z
      .object({ memoryMiB: mib("dom0 memory in MiB."), vcpus: z.int().min(0).describe("dom0 vCPUs.") })
      .optional()
      .describe("What the host's dom0 takes."),
    xenVersion: z.string().max(64).optional().describe("Hypervisor version, for example 4.17.7."),
    agentVersion: z.string().max(64).optional().describe("kubexen node agent version."),
    driver: z.enum(["xl", "sim"]).optional().describe("Hypervisor driver the agent uses."),
    capabilities: HostCapabilitiesSchema.optional().describe("What the hypervisor on this host can do."),
    migrationEndpoint: z
      .string()
      .max(300)
      .optional()
      .describe("host:port where the agent accepts migration streams (mutual TLS)."),
    domainCount: z.int().min(0).optional().describe("Domains running here that kubexen manages."),
    cpuLoad: z
      .number()
      .min(0)
      .optional()
      .describe("Guest CPU use as a fraction of capacity, measured from per-domain CPU time."),
    orphans: z
      .array(OrphanSchema)
      .max(256)
      .optional()
      .describe("Domains on this host that no XenDomain binds: reported, never touched."),
    lastHeartbeatTime: time(
      "When the agent last wrote this status: when it changed, and at least every 5 minutes (liveness is the agent's Lease).",
    ).optional(),
    fencing: z
      .object({
        enabled: z
          .boolean()
          .describe("The agent feeds a watchdog that resets the host when the Lease cannot be renewed."),
        windowSeconds: z
          .int()
          .min(0)
          .describe(
            "From the last Lease renewal, seconds after which the host has certainly reset (fence timeout plus watchdog timeout).",
          ),
      })
      .optional()
      .describe(
        "Self-fencing, as the agent runs it: what the operator's HA waits for before restarting domains elsewhere.",
      ),
    observedGeneration: observedGeneration(),
    conditions: conditions(
      "Ready (from the agent's heartbeat), MemoryPressure, Fenced (True once the host has certainly reset or is out of service: its domains may run elsewhere).",
    ),
  })
  .describe("What the node agent reports.");

export const XenHostSchema = z.object({
  apiVersion: z.literal("kubexen.io/v1alpha1"),
  kind: z.literal("XenHost"),
  metadata: ObjectMetaSchema,
  spec: XenHostSpecSchema.optional(),
  status: XenHostStatusSchema.optional(),
});
export type XenHost = z.infer<typeof XenHostSchema>;
export type XenHostStatus = z.infer<typeof XenHostStatusSchema>;
export type HostCapabilities = z.infer<typeof HostCapabilitiesSchema>;
