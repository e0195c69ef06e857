// The two time formats the Kubernetes API uses.

/** metav1.Time: RFC 3339 in seconds, as conditions and most status times are written. */
export function rfc3339(d: Date = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** metav1.MicroTime: RFC 3339 with microseconds, as Leases and events.k8s.io Events require. */
export function microTime(ms: number = Date.now()): string {
  return new Date(ms).toISOString().replace("Z", "000Z");
}
