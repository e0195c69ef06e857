// Field-level differences between two JSON values, as kopf reports them to
// update handlers: each entry says which path was added, changed or removed.

export interface FieldChange {
  op: "add" | "change" | "remove";
  path: string[];
  old?: unknown;
  new?: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Equality of two values as JSON: key order does not matter and a key holding
 * undefined is the same as no key (the API server returns maps with sorted
 * keys, so comparing serialised text would see changes that are not there).
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const keys = (o: Record<string, unknown>) => Object.keys(o).filter((k) => o[k] !== undefined);
    const ka = keys(a);
    if (ka.length !== keys(b).length) return false;
    return ka.every((k) => jsonEqual(a[k], b[k]));
  }
  return false;
}

export function diff(a: unknown, b: unknown, path: string[] = []): FieldChange[] {
  if (isObject(a) && isObject(b)) {
    const out: FieldChange[] = [];
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (!(k in b)) out.push({ op: "remove", path: [...path, k], old: a[k] });
      else if (!(k in a)) out.push({ op: "add", path: [...path, k], new: b[k] });
      else out.push(...diff(a[k], b[k], [...path, k]));
    }
    return out;
  }
  if (jsonEqual(a, b)) return [];
  if (a === undefined) return [{ op: "add", path, new: b }];
  if (b === undefined) return [{ op: "remove", path, old: a }];
  return [{ op: "change", path, old: a, new: b }];
}

/** True when a change touches `field` (dotted path) or something below or above it. */
export function touches(changes: FieldChange[], field: string): boolean {
  const f = field.split(".");
  return changes.some((c) => {
    const n = Math.min(c.path.length, f.length);
    for (let i = 0; i < n; i++) if (c.path[i] !== f[i]) return false;
    return true;
  });
}
