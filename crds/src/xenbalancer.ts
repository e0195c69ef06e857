// XenBalancer: the cluster's load balancer (one, named default). It measures
// CPU and memory load per host and plans live migrations that lower imbalance.
import { z } from "zod";
import { validations } from "./cel.ts";
import { conditions, ObjectMetaSchema, observedGeneration, time } from "./meta.ts";

// Mode names survive YAML 1.1 (kubectl's parser), which reads an unquoted
// On/Off/Yes/No/Y/N as a boolean: the original `Off` arrived as false. It is
// still accepted, as a deprecated alias of Disabled, so stored objects stay valid.
export const BalancerModeSchema = z
  .enum(["Disabled", "Recommend", "Auto", "Off"])
  .describe(
    "Disabled: do nothing. Recommend: write the plan into status. Auto: create XenMigrations with reason Balance. Off: deprecated alias of Disabled (write it quoted; YAML 1.1 reads a bare Off as false).",
  );
export type BalancerMode = z.infer<typeof BalancerModeSchema>;

/** The mode the balancer acts on: the deprecated `Off` is `Disabled`. */
export const effectiveBalancerMode = (mode: BalancerMode): Exclude<BalancerMode, "Off"> =>
  mode === "Off" ? "Disabled" : mode;

export const XenBalancerSpecSchema = z
  .object({
    mode: BalancerModeSchema.default("Recommend"),
    weights: z
      .object({
        cpu: z.number().min(0).max(1).default(0.5).describe("Weight of normalised CPU load."),
        memory: z.number().min(0).max(1).default(0.5).describe("Weight of normalised memory load."),
      })
      .default({ cpu: 0.5, memory: 0.5 })
      .describe("How CPU and memory combine into one load figure per host.")
      .meta(
        validations({
          // A negative weight is the schema's to report.
          rule: "self.cpu < 0.0 || self.memory < 0.0 || self.cpu + self.memory > 0.0",
          message: "at least one of weights.cpu and weights.memory must be positive",
        }),
      ),
    threshold: z
      .number()
      .min(0)
      .max(1)
      .default(0.1)
      .describe("Act when imbalance (standard deviation of normalised host load) exceeds this."),
    intervalSeconds: z.int().min(10).max(86400).default(300).describe("Seconds between balancing passes."),
    maxMigrationsPerCycle: z.int().min(1).max(100).default(4).describe("Most migrations one pass plans."),
    maxMigrationsPerHost: z
      .int()
      .min(1)
      .max(16)
      .default(2)
      .describe("Most migrations one pass plans into or out of one host."),
    cooldownSeconds: z
      .int()
      .min(0)
      .max(604800)
      .default(1800)
      .describe("A domain moved by the balancer is not moved by it again for this long."),
    minGain: z
      .number()
      .min(0)
      .max(1)
      .default(0.005)
      .describe(
        "A move must lower imbalance, times the square root of the number of hosts, by at least this much per GiB moved to be worth its cost.",
      ),
  })
  .describe("Balancing policy.");

export const RecommendationSchema = z.object({
  namespace: z.string().max(63).describe("The XenDomain's namespace."),
  domain: z.string().max(253).describe("The XenDomain to move."),
  source: z.string().max(253).describe("Host it runs on."),
  target: z.string().max(253).describe("Host to move it to."),
  memoryMiB: z.int().min(0).describe("Memory the move transfers."),
  expectedGain: z.number().describe("Drop in imbalance this move is expected to bring."),
});

export const XenBalancerStatusSchema = z
  .object({
    imbalance: z.number().min(0).optional().describe("Imbalance measured at the last pass."),
    projectedImbalance: z.number().min(0).optional().describe("Imbalance once the recommendations are carried out."),
    lastRunTime: time("When the last pass ran.").optional(),
    nextRunTime: time("When the next pass runs.").optional(),
    recommendations: z.array(RecommendationSchema).max(100).optional().describe("The plan of the last pass."),
    migrationsCreated: z.int().min(0).optional().describe("XenMigrations created in Auto mode, in total."),
    observedGeneration: observedGeneration(),
    conditions: conditions("Ready, Reconciling, Stalled."),
  })
  .describe("The last pass.");

export const XenBalancerSchema = z.object({
  apiVersion: z.literal("kubexen.io/v1alpha1"),
  kind: z.literal("XenBalancer"),
  metadata: ObjectMetaSchema,
  spec: XenBalancerSpecSchema.prefault({}),
  status: XenBalancerStatusSchema.optional(),
});
export type XenBalancer = z.infer<typeof XenBalancerSchema>;
