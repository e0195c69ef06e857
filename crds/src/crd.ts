// Generates CustomResourceDefinitions from the zod schemas. The output is a
// structural schema as the API server requires: every node typed, no $ref,
// no additionalProperties: false, int-or-string for quantities, defaults and
// CEL rules inline.
import { z } from "zod";
import { type CelRule, forApiServer } from "./cel.ts";
import { type KindDef, kinds } from "./kinds.ts";
import { GROUP, VERSION } from "./meta.ts";

export type JsonSchema = { [key: string]: unknown };

const SAFE = Number.MAX_SAFE_INTEGER;

/** Turns zod's OpenAPI 3.0 output into a Kubernetes structural schema. */
function structural(node: unknown, keepDoc: boolean): unknown {
  if (Array.isArray(node)) return node.map((n) => structural(n, keepDoc));
  if (node === null || typeof node !== "object") return node;
  const s: JsonSchema = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === "$schema" || k === "id") continue;
    if (k === "additionalProperties" && v === false) continue;
    if (k === "x-kubernetes-validations") s[k] = keepDoc ? v : (v as CelRule[]).map(forApiServer);
    else s[k] = k === "default" || k === "enum" ? v : structural(v, keepDoc);
  }
  if (s.type === "integer") {
    if (s.minimum === -SAFE) delete s.minimum;
    if (s.maximum === SAFE) delete s.maximum;
  }
  if (s.format === "date-time") delete s.pattern;
  if (s["x-kubernetes-int-or-string"] === true) {
    // Quantities: an integer (bytes) or a string with a suffix. The string's
    // pattern applies to the whole value, as for resource.Quantity.
    const branches = (s.anyOf as JsonSchema[] | undefined) ?? [];
    const str = branches.find((b) => b.type === "string");
    const int = branches.find((b) => b.type === "integer");
    delete s.type;
    s.anyOf = [{ type: "integer" }, { type: "string" }];
    if (str?.pattern) s.pattern = str.pattern;
    if (str?.maxLength) s.maxLength = str.maxLength;
    if (int?.minimum !== undefined && int.minimum !== -SAFE) s.minimum = int.minimum;
  }
  return ordered(s);
}

const firstKeys = ["type", "description", "default", "enum"];
/** Puts type and description first, so the YAML reads like a hand-written CRD. */
function ordered(s: JsonSchema): JsonSchema {
  const out: JsonSchema = {};
  for (const k of firstKeys) if (k in s) out[k] = s[k];
  for (const [k, v] of Object.entries(s)) if (!(k in out)) out[k] = v;
  return out;
}

/**
 * The structural JSON schema of one zod schema. `keepDoc` keeps the rules'
 * `doc` texts for docs/api.md; the API server must not get them.
 */
export function toStructural(schema: z.ZodType, keepDoc = false): JsonSchema {
  const json = z.toJSONSchema(schema, {
    target: "openapi-3.0",
    io: "input",
    unrepresentable: "throw",
    reused: "inline",
    cycles: "throw",
  });
  return structural(json, keepDoc) as JsonSchema;
}

export function crdName(def: KindDef): string {
  return `${def.plural}.${GROUP}`;
}

/** The CustomResourceDefinition for one kind. */
export function toCrd(def: KindDef): JsonSchema {
  const properties: JsonSchema = {
    apiVersion: { type: "string", description: "APIVersion defines the versioned schema of this object." },
    kind: { type: "string", description: "Kind is a string value representing the REST resource." },
    // name declared so that rules on the root can point at metadata.name
    metadata: { type: "object", properties: { name: { type: "string", description: "Name of the object." } } },
    spec: toStructural(def.spec),
  };
  if (def.status) properties.status = toStructural(def.status);
  const root: JsonSchema = { type: "object", description: def.description, properties };
  if (def.specRequired) root.required = ["spec"];
  if (def.rootValidations?.length) root["x-kubernetes-validations"] = def.rootValidations.map(forApiServer);
  const version: JsonSchema = {
    name: VERSION,
    served: true,
    storage: true,
    schema: { openAPIV3Schema: root },
    additionalPrinterColumns: def.printerColumns,
  };
  if (def.status) version.subresources = { status: {} };
  if (def.selectableFields.length) version.selectableFields = def.selectableFields.map((jsonPath) => ({ jsonPath }));
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: crdName(def),
      labels: { "app.kubernetes.io/part-of": "kubexen", "app.kubernetes.io/name": "kubexen" },
    },
    spec: {
      group: GROUP,
      scope: def.scope,
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: ["xen", "kubexen"],
      },
      versions: [version],
    },
  };
}

export function allCrds(): JsonSchema[] {
  return kinds.map(toCrd);
}
