// Resident memory and CPU time of a process, from /proc (Linux).
import { readFileSync } from "node:fs";

const TICKS = 100; // USER_HZ on Linux

export interface ProcSample {
  rssMiB: number;
  peakRssMiB: number;
  cpuSeconds: number;
}

export function procSample(pid: number = process.pid): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
  // Fields after the command name (which may hold spaces) in /proc/<pid>/stat: utime is 14th, stime 15th.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(rest[11] ?? 0);
  const stime = Number(rest[12] ?? 0);
  return { rssMiB: kb("VmRSS") / 1024, peakRssMiB: kb("VmHWM") / 1024, cpuSeconds: (utime + stime) / TICKS };
}

/** Each series of a counter in a /metrics text: its line (labels included) and its value. */
function* series(metricsText: string, name: string): Generator<{ line: string; value: number }> {
  for (const line of metricsText.split("\n"))
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `))
      yield { line, value: Number(line.slice(line.lastIndexOf(" ") + 1)) || 0 };
}

/** Requests the API server has served, from its /metrics, by "VERB resource[/subresource]". */
export function apiRequestsBy(metricsText: string): Map<string, number> {
  const by = new Map<string, number>();
  for (const { line, value } of series(metricsText, "apiserver_request_total")) {
    const label = (name: string) => new RegExp(`[{,]${name}="([^"]*)"`).exec(line)?.[1] ?? "";
    const sub = label("subresource");
    const key = `${label("verb")} ${label("resource")}${sub ? `/${sub}` : ""}`;
    by.set(key, (by.get(key) ?? 0) + value);
  }
  return by;
}

/** The sum of a counter's series in a /metrics text (0 where the API server has none yet). */
export function counterSum(metricsText: string, name: string): number {
  let sum = 0;
  for (const { value } of series(metricsText, name)) sum += value;
  return sum;
}

/** What the API server served between two samples, per domain, largest first. */
export function apiRequestsDelta(before: Map<string, number>, after: Map<string, number>, per: number) {
  return [...after]
    .map(([key, n]) => ({ key, perDomain: (n - (before.get(key) ?? 0)) / per }))
    .filter((r) => r.perDomain > 0)
    .sort((a, b) => b.perDomain - a.perDomain);
}
