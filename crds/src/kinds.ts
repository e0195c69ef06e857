// The kinds of kubexen.io/v1alpha1: names, scope, columns and selectable
// fields, next to the zod schemas they are generated from.
import type { z } from "zod";
import type { CelRule } from "./cel.ts";
import { XenBalancerSpecSchema, XenBalancerStatusSchema } from "./xenbalancer.ts";
import { XenDomainSpecSchema, XenDomainStatusSchema } from "./xendomain.ts";
import { XenHostSpecSchema, XenHostStatusSchema } from "./xenhost.ts";
import { XenMaintenanceSpecSchema, XenMaintenanceStatusSchema } from "./xenmaintenance.ts";
import { XenMigrationSpecSchema, XenMigrationStatusSchema } from "./xenmigration.ts";
import { XenMigrationPolicySpecSchema, XenMigrationPolicyStatusSchema } from "./xenmigrationpolicy.ts";

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface KindDef {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  scope: "Namespaced" | "Cluster";
  description: string;
  spec: z.ZodType;
  specRequired: boolean;
  status?: z.ZodType;
  printerColumns: PrinterColumn[];
  selectableFields: string[];
  /** Rules on the whole object (they may read metadata.name). */
  rootValidations?: CelRule[];
}

const ready = (desc = "Ready condition"): PrinterColumn => ({
  name: "Ready",
  type: "string",
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: desc,
});
const age: PrinterColumn = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" };
const singleton = (kind: string): CelRule => ({
  rule: "self.metadata.name == 'default'",
  message: `there is one ${kind} per cluster and it must be named default`,
  fieldPath: ".metadata.name",
});

export const kinds: KindDef[] = [
  {
    kind: "XenDomain",
    plural: "xendomains",
    singular: "xendomain",
    shortNames: ["xd"],
    scope: "Namespaced",
    description: "A Xen guest: what to run, declared by its user; where and how it runs, in status.",
    spec: XenDomainSpecSchema,
    specRequired: true,
    status: XenDomainStatusSchema,
    printerColumns: [
      { name: "Phase", type: "string", jsonPath: ".status.phase" },
      { name: "Host", type: "string", jsonPath: ".status.host" },
      { name: "Type", type: "string", jsonPath: ".spec.type", priority: 1 },
      { name: "vCPUs", type: "integer", jsonPath: ".spec.vcpus" },
      { name: "Memory", type: "string", jsonPath: ".spec.memory" },
      { name: "Domid", type: "integer", jsonPath: ".status.domid", priority: 1 },
      ready(),
      age,
    ],
    selectableFields: [".status.host", ".status.phase", ".status.uuid", ".spec.type"],
  },
  {
    kind: "XenHost",
    plural: "xenhosts",
    singular: "xenhost",
    shortNames: ["xh"],
    scope: "Cluster",
    description: "A Xen host (its dom0), registered and reported by the kubexen node agent running there.",
    spec: XenHostSpecSchema,
    specRequired: false,
    status: XenHostStatusSchema,
    printerColumns: [
      ready("Agent heartbeat"),
      { name: "Cordoned", type: "boolean", jsonPath: ".spec.unschedulable", priority: 1 },
      { name: "Domains", type: "integer", jsonPath: ".status.domainCount" },
      { name: "Free-MiB", type: "integer", jsonPath: ".status.freeMemoryMiB" },
      { name: "CPUs", type: "integer", jsonPath: ".status.capacity.cpus", priority: 1 },
      { name: "Xen", type: "string", jsonPath: ".status.xenVersion" },
      age,
    ],
    selectableFields: [".spec.unschedulable"],
  },
  {
    kind: "XenMigration",
    plural: "xenmigrations",
    singular: "xenmigration",
    shortNames: ["xmig"],
    scope: "Namespaced",
    description: "One live migration of one XenDomain to another host.",
    spec: XenMigrationSpecSchema,
    specRequired: true,
    status: XenMigrationStatusSchema,
    printerColumns: [
      { name: "Domain", type: "string", jsonPath: ".spec.domain" },
      { name: "Phase", type: "string", jsonPath: ".status.phase" },
      { name: "Source", type: "string", jsonPath: ".status.sourceHost" },
      { name: "Target", type: "string", jsonPath: ".status.targetHost" },
      { name: "Reason", type: "string", jsonPath: ".spec.reason" },
      { name: "Downtime-ms", type: "number", jsonPath: ".status.downtimeMs", priority: 1 },
      age,
    ],
    selectableFields: [".spec.domain", ".status.phase", ".status.sourceHost", ".status.targetHost"],
  },
  {
    kind: "XenMaintenance",
    plural: "xenmaintenances",
    singular: "xenmaintenance",
    shortNames: ["xmaint"],
    scope: "Cluster",
    description: "A Xen host in maintenance: cordoned and drained; deleting it cancels or ends maintenance.",
    spec: XenMaintenanceSpecSchema,
    specRequired: true,
    status: XenMaintenanceStatusSchema,
    printerColumns: [
      { name: "Host", type: "string", jsonPath: ".spec.host" },
      { name: "Phase", type: "string", jsonPath: ".status.phase" },
      { name: "Remaining", type: "integer", jsonPath: ".status.remaining" },
      { name: "Migrated", type: "integer", jsonPath: ".status.migrated" },
      { name: "Restarted", type: "integer", jsonPath: ".status.restarted" },
      { name: "Blocked", type: "integer", jsonPath: ".status.blocked" },
      { name: "ETA", type: "date", jsonPath: ".status.eta", priority: 1 },
      age,
    ],
    selectableFields: [".spec.host", ".status.phase"],
  },
  {
    kind: "XenBalancer",
    plural: "xenbalancers",
    singular: "xenbalancer",
    shortNames: ["xbal"],
    scope: "Cluster",
    description: "The cluster's load balancer (one, named default): live-migrates domains to even out host load.",
    spec: XenBalancerSpecSchema,
    specRequired: false,
    status: XenBalancerStatusSchema,
    printerColumns: [
      { name: "Mode", type: "string", jsonPath: ".spec.mode" },
      { name: "Imbalance", type: "number", jsonPath: ".status.imbalance" },
      { name: "Threshold", type: "number", jsonPath: ".spec.threshold" },
      { name: "Last-Run", type: "date", jsonPath: ".status.lastRunTime" },
      age,
    ],
    selectableFields: [],
    rootValidations: [singleton("XenBalancer")],
  },
  {
    kind: "XenMigrationPolicy",
    plural: "xenmigrationpolicies",
    singular: "xenmigrationpolicy",
    shortNames: ["xmp"],
    scope: "Cluster",
    description: "The cluster's live-migration limits and defaults (one, named default).",
    spec: XenMigrationPolicySpecSchema,
    specRequired: false,
    status: XenMigrationPolicyStatusSchema,
    printerColumns: [
      ready("Whether the operator applies this policy"),
      { name: "Cluster", type: "integer", jsonPath: ".spec.parallelMigrationsPerCluster" },
      { name: "Outbound", type: "integer", jsonPath: ".spec.parallelOutboundMigrationsPerHost" },
      { name: "Inbound", type: "integer", jsonPath: ".spec.parallelInboundMigrationsPerHost" },
      age,
    ],
    selectableFields: [],
    rootValidations: [singleton("XenMigrationPolicy")],
  },
];
