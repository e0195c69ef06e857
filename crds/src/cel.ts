// CEL validation rules (x-kubernetes-validations) attached to zod schemas as
// metadata, so the generated CRD makes the API server enforce them.

export interface CelRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  /** Path of the field the error names, relative to the schema the rule is on (".memory"). */
  fieldPath?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
  /** Run the rule on updates even when oldSelf is absent (for optional fields). */
  optionalOldSelf?: boolean;
  /** What the rule requires, in words, for docs/api.md (not sent to the API server). */
  doc?: string;
}

/** The rule as the API server takes it. */
export function forApiServer({ doc: _doc, ...rule }: CelRule): Omit<CelRule, "doc"> {
  return rule;
}

export const validations = (...rules: CelRule[]) => ({ "x-kubernetes-validations": rules });

/** A field that cannot change once set. */
export const immutable = (what: string): CelRule => ({
  rule: "self == oldSelf",
  message: `${what} is immutable`,
  reason: "FieldValueForbidden",
});

/** A CEL string literal holding `s` as is (backslashes and quotes escaped). */
export const celString = (s: string) => `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
