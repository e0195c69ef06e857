// Watches every sim host's own event stream and records any moment at which
// one domain (by UUID) runs on two hosts: the invariant every test of
// migration, HA and maintenance checks. Sims run in this process and emit
// synchronously, so the check is exact, not sampled.
import type { SimHypervisor } from "@kubexen/hypervisor";

export class OverlapRecorder {
  /** uuid -> hosts where it runs now. */
  private readonly running = new Map<string, Set<string>>();
  readonly overlaps: string[] = [];
  /** uuid -> how many times the guest was created or restored (a fresh start, not a migration). */
  readonly boots = new Map<string, number>();
  /** uuid -> every start on a host, with when. */
  readonly starts = new Map<string, Array<{ host: string; at: number }>>();
  private readonly unsubscribe: Array<() => void> = [];
  /** uuid -> the last events seen for it, to explain an overlap. */
  private readonly history = new Map<string, string[]>();

  constructor(sims: Map<string, SimHypervisor>) {
    for (const [host, sim] of sims) this.attach(host, sim);
  }

  attach(host: string, sim: SimHypervisor): void {
    this.unsubscribe.push(
      sim.watch((e) => {
        const set = this.running.get(e.uuid) ?? new Set<string>();
        const h = this.history.get(e.uuid) ?? [];
        h.push(`${new Date().toISOString().slice(11, 23)} ${host} ${e.type}${e.type === "state" ? ` ${e.state}` : ""}`);
        this.history.set(e.uuid, h.slice(-12));
        const runs = e.type === "state" && (e.state === "running" || e.state === "blocked");
        if (e.type === "state" && (e.reason === "create" || e.reason === "restore"))
          this.boots.set(e.uuid, (this.boots.get(e.uuid) ?? 0) + 1);
        if (runs && !set.has(host)) {
          set.add(host);
          const list = this.starts.get(e.uuid) ?? [];
          list.push({ host, at: Date.now() });
          this.starts.set(e.uuid, list);
          if (set.size > 1)
            this.overlaps.push(
              `${e.uuid} on ${[...set].join(" and ")} at ${new Date().toISOString()} after: ${this.history.get(e.uuid)?.join("; ")}`,
            );
        } else if (!runs) set.delete(host);
        this.running.set(e.uuid, set);
      }),
    );
  }

  /** Seeds what already runs (domains started before the recorder). */
  async seed(sims: Map<string, SimHypervisor>): Promise<void> {
    for (const [host, sim] of sims)
      for (const d of await sim.listDomains())
        if (d.state === "running" || d.state === "blocked") {
          const set = this.running.get(d.uuid) ?? new Set<string>();
          set.add(host);
          this.running.set(d.uuid, set);
        }
  }

  stop(): void {
    for (const u of this.unsubscribe.splice(0)) u();
  }
}
