// Auto-converge: how hard to throttle a guest whose live migration does not converge.
// Xen's pre-copy stops after a fixed number of rounds and sends what is still dirty with the guest
// paused, so a guest that dirties memory about as fast as the link carries it gets a long downtime.
// Throttling its CPU (a credit2 cap) slows the dirtying. The signal is what every driver can see:
// bytes sent against the guest's memory (xl prints no per-round counts while migrating). Everything
// beyond the first full pass is memory sent again; once that reaches half the guest's memory, the
// guest is throttled by 20%, and by 10% more for every further quarter of its memory, at most 99%
// (QEMU's auto-converge steps: 20% initial, 10% increment).

/** The CPU throttle (0 to 0.99) for a guest of `memoryBytes` once `sentBytes` have been sent. */
export function autoConvergeThrottle(memoryBytes: number, sentBytes: number): number {
  if (!(memoryBytes > 0)) throw new Error(`autoConvergeThrottle: memoryBytes must be positive, got ${memoryBytes}`);
  const resent = (sentBytes - memoryBytes) / memoryBytes;
  if (!(resent >= 0.5)) return 0;
  return Math.min(0.99, 0.2 + 0.1 * Math.floor((resent - 0.5) / 0.25 + 1e-9));
}

/**
 * The credit2 cap (percent of one CPU, at least 1) that throttles a guest of `vcpus` vCPUs by
 * `throttle`, from its own cap (0: none, all its vCPUs).
 */
export function throttleCap(vcpus: number, throttle: number, ownCap = 0): number {
  const base = ownCap > 0 ? ownCap : vcpus * 100;
  return Math.max(1, Math.round(base * (1 - throttle)));
}
