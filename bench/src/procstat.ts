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

/** Total requests the API server has served, from its /metrics. */
export function apiRequests(metricsText: string): number {
  let total = 0;
  for (const line of metricsText.split("\n"))
    if (line.startsWith("apiserver_request_total{")) total += Number(line.slice(line.lastIndexOf(" ") + 1)) || 0;
  return total;
}
