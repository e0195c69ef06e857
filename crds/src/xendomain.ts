// XenDomain: one Xen guest, declared by its user. Everything the system
// generates (placement, domid, UUID, MACs) lives in status, never in spec.
import { z } from "zod";
import { celString, immutable, validations } from "./cel.ts";
import {
  checked,
  conditions,
  dom0Path,
  IPV4_PATTERN,
  MAC_PATTERN,
  matchLabels,
  NO_CONTROL_PATTERN,
  ObjectMetaSchema,
  observedGeneration,
  PCI_BDF_PATTERN,
  time,
} from "./meta.ts";
import { QUANTITY_PATTERN, quantitySchema } from "./quantity.ts";

export const GuestTypeSchema = z
  .enum(["pvh", "hvm", "pv"])
  .describe(
    "Xen guest type: pvh (paravirtualised hardware, the default), hvm (full virtualisation) or pv (paravirtualised).",
  );
export type GuestType = z.infer<typeof GuestTypeSchema>;

/** Xen's limit on vCPUs for HVM and PVH guests (HVM_MAX_VCPUS). */
export const HVM_MAX_VCPUS = 128;
/** Upper bound kubexen accepts for PV guests. */
export const PV_MAX_VCPUS = 512;
/** Smallest guest kubexen will create. */
export const MIN_MEMORY = "16Mi";
/** Largest guest kubexen accepts: the most physical memory Xen on x86 supports without CONFIG_BIGMEM. */
export const MAX_MEMORY = "16Ti";
/** Bootloaders Xen ships that may run in dom0; a path would let a tenant run any dom0 binary. */
export const BOOTLOADERS = ["pygrub"] as const;

export const BootSchema = z
  .object({
    kernel: dom0Path(
      "Absolute path, in the host's dom0, of the kernel to boot directly (pv, pvh; optional for hvm).",
    ).optional(),
    ramdisk: dom0Path("Absolute path, in the host's dom0, of the initial ramdisk.").optional(),
    cmdline: checked(z.string().max(4096), NO_CONTROL_PATTERN, "must not contain control characters")
      .optional()
      .describe("Kernel command line, for example console=hvc0 root=/dev/xvda1; no control characters."),
    bootloader: z
      .enum(BOOTLOADERS)
      .optional()
      .describe("Bootloader Xen ships, run in dom0 to find the kernel inside the guest's disk (pv): pygrub."),
    firmware: z
      .enum(["bios", "uefi"])
      .optional()
      .describe("Firmware for hvm guests: bios (SeaBIOS, the default) or uefi (OVMF)."),
  })
  .describe("How the guest boots.");

export const DiskSchema = z.object({
  vdev: z
    .string()
    .max(5)
    .regex(/^(xvd|hd|sd)[a-z]{1,2}$/)
    .describe("Virtual device name in the guest, for example xvda, hda or sdb."),
  source: dom0Path(
    "Backing storage in the host's dom0: the absolute path of a file or a block device, for example /var/lib/xen/images/web.img or /dev/vg0/web.",
  ),
  format: z.enum(["raw", "qcow2", "qcow", "vhd"]).default("raw").describe("Format of the backing storage."),
  access: z.enum(["rw", "ro"]).default("rw").describe("Read-write or read-only."),
  devtype: z
    .enum(["disk", "cdrom"])
    .default("disk")
    .describe("Disk or CD-ROM. A CD-ROM is an emulated device, so pvh guests cannot have one."),
});

export const NetworkSchema = z.object({
  bridge: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/)
    .describe(
      "Bridge in dom0 the guest's interface is attached to, for example xenbr0: a Linux interface name (at most 15 letters, digits, _ . -, starting with a letter or digit).",
    ),
  mac: z
    .string()
    .regex(new RegExp(MAC_PATTERN))
    .optional()
    .describe(
      "Unicast MAC address. When absent, kubexen generates a stable one under Xen's 00:16:3e prefix and records it in status.",
    ),
  ip: checked(z.string().max(15), IPV4_PATTERN, "must be an IPv4 address in dotted-quad form, for example 192.0.2.10")
    .optional()
    .describe("IPv4 address the vif script configures for the interface (informational for bridged networks)."),
  model: z
    .enum(["e1000", "rtl8139", "virtio-net"])
    .optional()
    .describe("Emulated NIC model for hvm guests; PV drivers are used when the guest has them."),
  rateLimitMbps: z.int().min(1).max(400_000).optional().describe("Outbound rate limit in Mbit/s."),
});

export const CpuSchema = z
  .object({
    pinning: z
      .string()
      .regex(/^(all|[0-9]{1,4}(-[0-9]{1,4})?(,[0-9]{1,4}(-[0-9]{1,4})?)*)$/)
      .max(256)
      .optional()
      .describe("Physical CPUs the vCPUs may run on, as a list of ranges (0-3,6) or all."),
    weight: z
      .int()
      .min(1)
      .max(65535)
      .default(256)
      .describe("credit2 scheduler weight: relative share of CPU under contention."),
    cap: z
      .int()
      .min(0)
      .max(51200)
      .default(0)
      .describe("credit2 cap in percent of one physical CPU (100 = one full CPU); 0 means no cap."),
  })
  .describe("CPU scheduling.");

export const MigrationOverridesSchema = z
  .object({
    bandwidthMiBps: z.int().min(1).optional().describe("Bandwidth limit for this domain's migrations, in MiB/s."),
    completionTimeoutPerGiB: z
      .int()
      .min(1)
      .optional()
      .describe("Seconds allowed per GiB of memory before a migration is aborted."),
    progressTimeoutSeconds: z
      .int()
      .min(1)
      .optional()
      .describe("Seconds without progress after which a migration is aborted."),
    autoConverge: z
      .boolean()
      .optional()
      .describe("Throttle the guest's CPU (credit2 cap) when pre-copy does not converge."),
  })
  .describe("Overrides of the cluster's migration policy for this domain.");

export const RunStrategySchema = z
  .enum(["Always", "RerunOnFailure", "Once", "Manual", "Halted"])
  .describe(
    "Always: keep it running, restart it whenever it stops. RerunOnFailure: restart it after a crash, not after a clean shutdown. Once: run it once. Manual: start it once, then leave starts and stops to the user. Halted: keep it stopped.",
  );
export const PowerStateSchema = z
  .enum(["Running", "Paused", "Saved"])
  .describe(
    "Running; Paused (vCPUs stopped, memory kept); Saved (memory written to the host with xl save, restored on return to Running).",
  );
export const EvictionStrategySchema = z
  .enum(["LiveMigrate", "LiveMigrateIfPossible", "Restart", "None"])
  .describe(
    "What maintenance does to this domain: LiveMigrate (only by live migration; block if impossible), LiveMigrateIfPossible (else restart elsewhere), Restart (stop and start elsewhere), None (block maintenance until the user moves it).",
  );

// CEL runs even when a field fails its pattern or bounds, and quantity() of a
// string that is not a quantity is an evaluation error: every rule below holds
// (passes) on values the schema already refuses, so only the schema's message
// names them, and reads its operands only once they are known to be valid.
const isQuantity = (x: string) => `string(${x}).matches(${celString(QUANTITY_PATTERN)})`;
const quantityOf = (x: string) => `quantity(string(${x}))`;
const q = quantityOf("self");

const memoryField = (description: string) =>
  quantitySchema(description).meta(
    validations(
      {
        rule: `!${isQuantity("self")} || ${q}.compareTo(quantity('${MIN_MEMORY}')) >= 0`,
        doc: `at least ${MIN_MEMORY}`,
        messageExpression: `'must be at least ${MIN_MEMORY}, got ' + string(self) + ' (a bare number is bytes; write 512Mi or 2Gi)'`,
      },
      {
        rule: `!${isQuantity("self")} || ${q}.compareTo(quantity('${MAX_MEMORY}')) <= 0`,
        doc: `at most ${MAX_MEMORY}`,
        messageExpression: `'must be at most ${MAX_MEMORY}, got ' + string(self)`,
      },
      {
        // isInteger() and asInteger() fail on any quantity with a fraction
        // (1.5Gi is held as a decimal, not an int64), so round to the nearest
        // MiB in floating point and subtract that exactly: zero only when the
        // value is whole MiB. The bound keeps the rounding and product exact.
        rule: `!${isQuantity("self")} || ${q}.compareTo(quantity('${MAX_MEMORY}')) > 0 || ${q}.sub(int(${q}.asApproximateFloat() / 1048576.0 + 0.5) * 1048576).compareTo(quantity('0')) == 0`,
        doc: "a whole number of MiB",
        messageExpression: "'must be a whole number of MiB, got ' + string(self)",
      },
    ),
  );

/** vCPUs the guest can reach: maxVcpus, else vcpus. */
const vcpuCeiling = "(has(self.maxVcpus) ? self.maxVcpus : self.vcpus)";

export const XenDomainSpecSchema = z
  .object({
    type: GuestTypeSchema.default("pvh"),
    vcpus: z.int().min(1).max(PV_MAX_VCPUS).default(1).describe("vCPUs online at start."),
    maxVcpus: z
      .int()
      .min(1)
      .max(PV_MAX_VCPUS)
      .optional()
      .describe("vCPUs the guest can be given without a restart (hotplug ceiling); defaults to vcpus."),
    memory: memoryField("Memory at start (balloon target), as a quantity: 512Mi, 4Gi."),
    maxMemory: memoryField("Memory the guest can balloon up to without a restart; defaults to memory.").optional(),
    boot: BootSchema.optional(),
    disks: z
      .array(DiskSchema)
      .max(26)
      .optional()
      .describe("Virtual disks, each with a unique vdev.")
      .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["vdev"] }),
    networks: z.array(NetworkSchema).max(16).optional().describe("Virtual network interfaces, in guest order."),
    cpu: CpuSchema.optional(),
    pciDevices: z
      .array(z.string().regex(new RegExp(PCI_BDF_PATTERN)))
      .max(16)
      .optional()
      .describe(
        "PCI devices passed through (0000:03:00.0 form). A domain with passthrough devices cannot live-migrate.",
      )
      .meta({ "x-kubernetes-list-type": "set" }),
    hostSelector: matchLabels("Labels a XenHost must carry for this domain to be placed on it.").optional(),
    antiAffinity: z
      .array(z.object({ matchLabels: matchLabels("Labels of the domains to keep apart from.") }))
      .max(8)
      .optional()
      .describe(
        "Domains in the same namespace matching any of these selectors are never placed on this domain's host.",
      ),
    priority: z
      .int()
      .min(-1000000)
      .max(1000000)
      .default(0)
      .describe("Higher priority domains are placed, restarted and migrated first."),
    runStrategy: RunStrategySchema.default("Always"),
    powerState: PowerStateSchema.default("Running"),
    evictionStrategy: EvictionStrategySchema.default("LiveMigrateIfPossible"),
    terminationGracePeriodSeconds: z
      .int()
      .min(0)
      .max(3600)
      .default(120)
      .describe("Seconds a clean shutdown may take before the domain is destroyed."),
    migration: MigrationOverridesSchema.optional(),
  })
  .describe("The desired guest.")
  .meta(
    validations(
      immutableTypeRule(),
      {
        rule: `!has(self.maxMemory) || !${isQuantity("self.memory")} || !${isQuantity("self.maxMemory")} || ${quantityOf("self.maxMemory")}.compareTo(quantity('${MIN_MEMORY}')) < 0 || ${quantityOf("self.memory")}.compareTo(${quantityOf("self.maxMemory")}) <= 0`,
        doc: "memory must not exceed maxMemory",
        messageExpression:
          "'memory (' + string(self.memory) + ') must not exceed maxMemory (' + string(self.maxMemory) + ')'",
        fieldPath: ".memory",
      },
      {
        // A maxVcpus below 1 is the schema's to report, not a fault of vcpus.
        rule: "!has(self.maxVcpus) || self.maxVcpus < 1 || self.vcpus <= self.maxVcpus",
        doc: "vcpus must not exceed maxVcpus",
        message: "vcpus must not exceed maxVcpus",
        fieldPath: ".vcpus",
      },
      {
        rule: `self.type == 'pv' || self.vcpus <= ${HVM_MAX_VCPUS}`,
        doc: `hvm and pvh guests have at most ${HVM_MAX_VCPUS} vcpus (Xen's HVM_MAX_VCPUS)`,
        message: `hvm and pvh guests can have at most ${HVM_MAX_VCPUS} vCPUs (HVM_MAX_VCPUS); only pv guests may have more`,
        fieldPath: ".vcpus",
      },
      {
        rule: `self.type == 'pv' || !has(self.maxVcpus) || self.maxVcpus <= ${HVM_MAX_VCPUS}`,
        doc: `hvm and pvh guests have a maxVcpus of at most ${HVM_MAX_VCPUS}`,
        message: `hvm and pvh guests can have a maxVcpus of at most ${HVM_MAX_VCPUS} (HVM_MAX_VCPUS); only pv guests may have more`,
        fieldPath: ".maxVcpus",
      },
      {
        rule: "self.type != 'pv' || (has(self.boot) && (has(self.boot.kernel) || has(self.boot.bootloader)))",
        message: "a pv guest needs boot.kernel or boot.bootloader",
        fieldPath: ".boot",
        reason: "FieldValueRequired",
      },
      {
        rule: "self.type != 'pvh' || (has(self.boot) && has(self.boot.kernel))",
        message: "a pvh guest needs boot.kernel",
        fieldPath: ".boot",
        reason: "FieldValueRequired",
      },
      {
        rule: "!has(self.boot) || !has(self.boot.firmware) || self.type == 'hvm'",
        message: "boot.firmware applies to hvm guests only",
        fieldPath: ".boot.firmware",
        reason: "FieldValueForbidden",
      },
      {
        rule: "!has(self.pciDevices) || size(self.pciDevices) == 0 || self.evictionStrategy != 'LiveMigrate'",
        message:
          "a domain with pciDevices cannot live-migrate: use evictionStrategy LiveMigrateIfPossible, Restart or None",
        fieldPath: ".evictionStrategy",
        reason: "FieldValueForbidden",
      },
      {
        rule: "self.type != 'pvh' || !has(self.disks) || self.disks.all(d, !has(d.devtype) || d.devtype != 'cdrom')",
        doc: "no cdrom disk on a pvh guest",
        message:
          "a pvh guest has no emulated devices, so none of its disks can have devtype cdrom: use devtype disk, or type hvm",
        fieldPath: ".disks",
        reason: "FieldValueForbidden",
      },
      {
        // Operands outside their bounds are the schema's to report (and 100
        // times an unbounded maxVcpus could overflow).
        rule: `!has(self.cpu) || self.cpu.cap > 51200 || ${vcpuCeiling} < 1 || ${vcpuCeiling} > ${PV_MAX_VCPUS} || self.cpu.cap <= 100 * ${vcpuCeiling}`,
        doc: "cpu.cap is at most 100% per vCPU",
        message: "cpu.cap must not exceed 100 (percent of one physical CPU) per vCPU (of maxVcpus, else vcpus)",
        fieldPath: ".cpu.cap",
      },
    ),
  );

function immutableTypeRule() {
  return { ...immutable("type"), rule: "self.type == oldSelf.type", fieldPath: ".type" };
}

export const DomainPhaseSchema = z
  .enum([
    "Pending",
    "Scheduling",
    "Unschedulable",
    "Starting",
    "Running",
    "Paused",
    "Saving",
    "Saved",
    "Restoring",
    "Migrating",
    "Stopping",
    "Stopped",
    "Succeeded",
    "Failed",
    "CrashLoopBackOff",
    "Unknown",
    "Terminating",
  ])
  .describe("Where the domain is in its life.");
export type DomainPhase = z.infer<typeof DomainPhaseSchema>;
export type RunStrategy = z.infer<typeof RunStrategySchema>;
export type EvictionStrategy = z.infer<typeof EvictionStrategySchema>;

export const HypervisorStateSchema = z
  .enum(["running", "blocked", "paused", "shutdown", "crashed", "dying", "absent"])
  .describe("The domain's state as the hypervisor reports it.");
export type HypervisorState = z.infer<typeof HypervisorStateSchema>;

export const MigrationRefSchema = z.object({
  name: z.string().max(253).describe("The XenMigration."),
  phase: z.string().max(32).optional().describe("Its phase when last seen."),
  sourceHost: z.string().max(253).optional().describe("Host it left."),
  targetHost: z.string().max(253).optional().describe("Host it went to."),
  completionTime: time("When it ended.").optional(),
});

export const XenDomainStatusSchema = z
  .object({
    phase: DomainPhaseSchema.optional(),
    host: z.string().max(253).optional().describe("The XenHost the domain is bound to (written by the scheduler)."),
    domid: z
      .int()
      .min(0)
      .optional()
      .describe("Xen domain ID on its host; changes on every start, restore and migration."),
    uuid: z
      .string()
      .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
      .optional()
      .describe("The domain's Xen UUID: its identity across hosts, generated once."),
    state: HypervisorStateSchema.optional(),
    interfaces: z
      .array(
        z.object({
          index: z.int().min(0).describe("Position in spec.networks."),
          mac: z.string().regex(new RegExp(MAC_PATTERN)).describe("MAC address in use."),
          bridge: z.string().max(15).optional().describe("Bridge the interface is attached to."),
        }),
      )
      .max(16)
      .optional()
      .describe("Network interfaces with the MAC addresses in use (generated ones included)."),
    memoryMiB: z.int().min(0).optional().describe("Memory the domain has now, in MiB."),
    vcpus: z.int().min(0).optional().describe("vCPUs online now."),
    cpuTimeSeconds: z
      .number()
      .min(0)
      .optional()
      .describe("CPU time consumed, in seconds, as the hypervisor counts it."),
    migratable: z.boolean().optional().describe("Whether the domain can live-migrate from where it runs."),
    savedImage: dom0Path("Path on the host of the saved image while powerState is Saved.").optional(),
    restartCount: z
      .int()
      .min(0)
      .optional()
      .describe("How many times the domain was restarted after it stopped or crashed."),
    lastRestartTime: time("When it was last restarted.").optional(),
    nextRestartTime: time("When the next restart is due (crash-loop backoff).").optional(),
    startTime: time("When the current run started.").optional(),
    migration: z
      .object({
        current: MigrationRefSchema.optional().describe("The migration under way."),
        last: MigrationRefSchema.optional().describe("The last migration that ended."),
      })
      .optional()
      .describe("The domain's current and last live migration."),
    eviction: z
      .object({
        by: z.string().max(253).describe("What evicts it, for example XenMaintenance/xen-01."),
        reason: z.string().max(1024).describe("Why."),
        time: time("When the eviction was requested."),
      })
      .optional()
      .describe(
        "Set by the operator to move the domain off its host by a restart: the agent stops it, then the domain is placed elsewhere.",
      ),
    unschedulableReasons: z
      .record(z.string(), z.int())
      .optional()
      .describe("Why no host fits, counted per cause, when the domain cannot be placed."),
    observedGeneration: observedGeneration(),
    conditions: conditions("Ready, Scheduled, Migratable, Reconciling and Stalled."),
  })
  .describe("What the system observed and generated.");

export const XenDomainSchema = z.object({
  apiVersion: z.literal("kubexen.io/v1alpha1"),
  kind: z.literal("XenDomain"),
  metadata: ObjectMetaSchema,
  spec: XenDomainSpecSchema,
  status: XenDomainStatusSchema.optional(),
});
export type XenDomain = z.infer<typeof XenDomainSchema>;
export type XenDomainInput = z.input<typeof XenDomainSchema>;
export type XenDomainSpec = z.infer<typeof XenDomainSpecSchema>;
export type XenDomainStatus = z.infer<typeof XenDomainStatusSchema>;
