// A live migration's downtime as the source sees it: from the moment xl
// suspends the guest for its last copy to the end of `xl migrate` (the target
// runs it). xl prints no line when it suspends; the driver's looks at the
// guest's state (`---ss-`) find it, within one look's rest. A look that never
// saw it suspended (the last copy fell between two looks, as on an emulated
// dom0 where looks rest seconds apart) still bounds it: the guest ran at the
// last look that saw it running, and was suspended before the target was given
// permission to start. Then the downtime is at most the time since that look,
// which is what is reported, never 0.

export interface DowntimeFacts {
  /** When a look first saw the guest suspended. */
  seenSuspendedMs?: number;
  /** When the last look that saw it running began. */
  seenRunningMs?: number;
  /** When xl gave the target permission to start (the guest was suspended by then). */
  permissionMs?: number;
  /** When `xl migrate` ended. */
  endMs: number;
}

export function downtimeMs(f: DowntimeFacts): number {
  const since = (t: number) => Math.max(0, f.endMs - t);
  if (f.seenSuspendedMs !== undefined) return since(f.seenSuspendedMs);
  if (f.seenRunningMs !== undefined) return since(f.seenRunningMs);
  if (f.permissionMs !== undefined) return since(f.permissionMs);
  return 0;
}
