// Kubernetes resource quantities ("512Mi", "2Gi", "1.5G", 1073741824) and
// their conversion to the byte and MiB counts Xen works in.
import { z } from "zod";

/** A non-negative quantity: digits, an optional fraction, an optional binary or decimal suffix. */
export const QUANTITY_PATTERN = "^[0-9]+(\\.[0-9]+)?([KMGTPE]i|[kMGTPE])?$";
const quantityRe = new RegExp(QUANTITY_PATTERN);

const multipliers: Record<string, number> = {
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/**
 * A memory size as a Kubernetes quantity: an integer is bytes, a string takes a
 * suffix (Mi, Gi, M, G, ...). Stored as given; read with `quantityBytes`.
 */
export function quantitySchema(description: string) {
  return z
    .union([z.int().min(0), z.string().regex(quantityRe).max(32)])
    .describe(description)
    .meta({ "x-kubernetes-int-or-string": true });
}

export type Quantity = number | string;

/** Bytes in a quantity; throws with the offending value when it is not one. */
export function quantityBytes(q: Quantity): number {
  if (typeof q === "number") {
    if (!Number.isFinite(q) || q < 0) throw new Error(`invalid quantity ${q}: must be a non-negative number of bytes`);
    return q;
  }
  const m = /^([0-9]+(?:\.[0-9]+)?)([KMGTPE]i|[kMGTPE])?$/.exec(q.trim());
  if (!m || !quantityRe.test(q.trim()))
    throw new Error(`invalid quantity "${q}": expected a number with an optional suffix such as Mi or Gi`);
  const value = Number(m[1]);
  const mult = multipliers[m[2] ?? ""] ?? 1;
  return Math.round(value * mult);
}

/** MiB in a quantity, rounded up (Xen allocates whole MiB). */
export function quantityMiB(q: Quantity): number {
  return Math.ceil(quantityBytes(q) / 2 ** 20);
}

/** A MiB count written back as a quantity string. */
export function mibQuantity(mib: number): string {
  return mib % 1024 === 0 ? `${mib / 1024}Gi` : `${mib}Mi`;
}
