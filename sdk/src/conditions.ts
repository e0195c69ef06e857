// Conditions as metav1.Condition defines them, and the kstatus reading of
// them: an object is Current when Ready is True for its generation, InProgress
// while Reconciling is True, Failed when Stalled is True.

import { rfc3339 } from "./time.ts";

export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export type ConditionInput = Omit<Condition, "lastTransitionTime">;

/**
 * Sets one condition in a list (returning a new list). lastTransitionTime
 * changes only when the status changes, so repeated reconciles do not churn.
 */
export function setCondition(
  list: readonly Condition[] | undefined,
  c: ConditionInput,
  now: Date = new Date(),
): Condition[] {
  const out = [...(list ?? [])];
  const i = out.findIndex((x) => x.type === c.type);
  const prev = i >= 0 ? out[i] : undefined;
  const lastTransitionTime = prev && prev.status === c.status ? prev.lastTransitionTime : rfc3339(now);
  const next: Condition = { ...c, lastTransitionTime };
  if (next.observedGeneration === undefined) delete next.observedGeneration;
  if (i >= 0) out[i] = next;
  else out.push(next);
  return out;
}

export function removeCondition(list: readonly Condition[] | undefined, type: string): Condition[] {
  return (list ?? []).filter((c) => c.type !== type);
}

export function getCondition(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

export function isTrue(list: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(list, type)?.status === "True";
}

/** The kstatus-conformant trio for a reconcile that finished well: Ready True, Reconciling and Stalled gone. */
export function markReady(
  list: readonly Condition[] | undefined,
  generation: number | undefined,
  reason: string,
  message: string,
  now?: Date,
): Condition[] {
  let out = setCondition(list, { type: "Ready", status: "True", reason, message, observedGeneration: generation }, now);
  out = removeCondition(removeCondition(out, "Reconciling"), "Stalled");
  return out;
}

/** Work under way: Reconciling True, Ready False (or Unknown), not Stalled. */
export function markReconciling(
  list: readonly Condition[] | undefined,
  generation: number | undefined,
  reason: string,
  message: string,
  now?: Date,
): Condition[] {
  let out = setCondition(
    list,
    { type: "Reconciling", status: "True", reason, message, observedGeneration: generation },
    now,
  );
  out = setCondition(out, { type: "Ready", status: "False", reason, message, observedGeneration: generation }, now);
  return removeCondition(out, "Stalled");
}

/** Cannot make progress without a change: Stalled True, Ready False, not Reconciling. */
export function markStalled(
  list: readonly Condition[] | undefined,
  generation: number | undefined,
  reason: string,
  message: string,
  now?: Date,
): Condition[] {
  let out = setCondition(
    list,
    { type: "Stalled", status: "True", reason, message, observedGeneration: generation },
    now,
  );
  out = setCondition(out, { type: "Ready", status: "False", reason, message, observedGeneration: generation }, now);
  return removeCondition(out, "Reconciling");
}

export type KStatus = "Current" | "InProgress" | "Failed" | "Unknown";

/** How kstatus (Flux, kubectl wait, cli-utils) reads an object with these conditions. */
export function kstatus(
  generation: number | undefined,
  observedGeneration: number | undefined,
  list: readonly Condition[] | undefined,
): KStatus {
  if (generation !== undefined && observedGeneration !== undefined && observedGeneration < generation)
    return "InProgress";
  if (isTrue(list, "Stalled")) return "Failed";
  if (isTrue(list, "Reconciling")) return "InProgress";
  const ready = getCondition(list, "Ready");
  if (!ready) return "Unknown";
  return ready.status === "True" ? "Current" : "InProgress";
}
