// Building blocks shared by every kind: object metadata, conditions, times,
// and the formats users write (names, MACs, PCI addresses).
import { z } from "zod";
import { celString, validations } from "./cel.ts";

export const GROUP = "kubexen.io";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

/** An RFC 3339 time as the API server writes it. */
export const time = (description: string) => z.string().max(64).describe(description).meta({ format: "date-time" });

/** A DNS-1123 subdomain, the form of most Kubernetes object names. */
export const DNS_SUBDOMAIN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
export const objectName = (description: string) =>
  z.string().min(1).max(253).regex(new RegExp(DNS_SUBDOMAIN)).describe(description);

/** A unicast MAC address (the multicast bit of the first octet clear), colon-separated. */
export const MAC_PATTERN = "^[0-9a-fA-F][02468aceACE](:[0-9a-fA-F]{2}){5}$";
/** A PCI address in domain:bus:device.function form, as `xl pci-assignable-list` prints it. */
export const PCI_BDF_PATTERN = "^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\\.[0-7]$";

/**
 * A string the API server checks against `pattern` with a CEL rule, so a
 * refusal says `message` on the field instead of printing the pattern; zod
 * checks the same.
 */
export function checked(s: z.ZodString, pattern: string, message: string) {
  // The patterns used here mean the same in JavaScript (u flag) and in CEL's RE2.
  const re = new RegExp(pattern, "u");
  return s
    .refine((v) => re.test(v), { message })
    .meta(validations({ rule: `self.matches(${celString(pattern)})`, message }));
}

/** Characters a dom0 path may hold: nothing xl.cfg, a shell or an xl device spec treats specially. */
const PATH_CHAR = "[A-Za-z0-9._+@:-]";
/** One path name other than `.` and `..` (RE2 has no lookahead, so the three shapes are spelt out). */
const PATH_NAME = `(?:[A-Za-z0-9_+@:-]${PATH_CHAR}*|\\.[A-Za-z0-9_+@:-]${PATH_CHAR}*|\\.\\.${PATH_CHAR}+)`;
/** An absolute dom0 path: `/`-separated names, none empty, `.` or `..`. */
export const DOM0_PATH_PATTERN = `^(?:/${PATH_NAME})+$`;
export const DOM0_PATH_MESSAGE =
  "must be an absolute path of /-separated names made of letters, digits and . _ + @ : - (no empty, . or .. names)";
/** A path in a host's dom0 that a tenant names: it reaches xl.cfg and xl's device specs. */
export const dom0Path = (description: string) =>
  checked(z.string().max(4096), DOM0_PATH_PATTERN, DOM0_PATH_MESSAGE).describe(description);

/** Text without control characters (C0, DEL, C1): a newline or NUL would end or split an xl.cfg line. */
export const NO_CONTROL_PATTERN = "^\\P{Cc}*$";

/** A dotted-quad IPv4 address, each part 0-255 without leading zeros. */
const OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
export const IPV4_PATTERN = `^(?:${OCTET}\\.){3}${OCTET}$`;

/**
 * Object metadata. The API server validates metadata itself; this schema only
 * types what kubexen reads and passes everything else through.
 */
export const ObjectMetaSchema = z
  .object({
    name: z.string().optional(),
    generateName: z.string().optional(),
    namespace: z.string().optional(),
    uid: z.string().optional(),
    resourceVersion: z.string().optional(),
    generation: z.int().optional(),
    creationTimestamp: z.string().optional(),
    deletionTimestamp: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    finalizers: z.array(z.string()).optional(),
    ownerReferences: z
      .array(
        z
          .object({
            apiVersion: z.string(),
            kind: z.string(),
            name: z.string(),
            uid: z.string(),
            controller: z.boolean().optional(),
            blockOwnerDeletion: z.boolean().optional(),
          })
          .loose(),
      )
      .optional(),
  })
  .loose();
export type ObjectMeta = z.infer<typeof ObjectMetaSchema>;

/** A condition as metav1.Condition defines it (and kstatus reads it). */
export const ConditionSchema = z.object({
  type: z.string().min(1).max(316).describe("Type of condition in CamelCase, for example Ready."),
  status: z.enum(["True", "False", "Unknown"]).describe("Status of the condition: True, False or Unknown."),
  observedGeneration: z.int().min(0).optional().describe("The .metadata.generation the condition was set from."),
  lastTransitionTime: time("When the condition last changed from one status to another."),
  reason: z
    .string()
    .max(1024)
    .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
    .describe("A programmatic identifier in CamelCase for the condition's last transition."),
  message: z.string().max(32768).describe("A human-readable message with details about the transition."),
});
export type Condition = z.infer<typeof ConditionSchema>;

export const observedGeneration = () =>
  z.int().min(0).optional().describe("The .metadata.generation this status reflects.");

export const conditions = (description: string) =>
  z
    .array(ConditionSchema)
    .max(32)
    .optional()
    .describe(description)
    .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] });

/** Labels to match, as in a Kubernetes label selector's matchLabels. */
export const matchLabels = (description: string) =>
  z.record(z.string().max(317), z.string().max(63)).describe(description);
