// Parsers for what xl prints: `xl info`, `xl list -v` and `xl list -l`
// (libxl's JSON IDL encoding), and the progress and outcome lines of
// `xl migrate`.
import type { GuestType, HypervisorState } from "@kubexen/crds";
import type { DomainInfo, MigrationProgress } from "../types.ts";

/** `xl info`: "key : value" lines. */
export function parseXlInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let last = "";
  for (const raw of text.split("\n")) {
    const m = /^([a-z_]+)\s*:\s?(.*)$/.exec(raw);
    if (m?.[1]) {
      last = m[1];
      out[last] = (m[2] ?? "").trim();
    } else if (last && raw.startsWith(" ") && raw.trim()) {
      // Continuation of a long value (xen_commandline on some builds).
      out[last] = `${out[last]} ${raw.trim()}`;
    }
  }
  return out;
}

export interface XlInfo {
  hostname: string;
  xenVersion: string;
  cpus: number;
  numaNodes: number;
  cpuMhz?: number;
  totalMemoryMiB: number;
  freeMemoryMiB: number;
  scheduler: string;
  virtCaps: string[];
  xenCaps: string[];
}

export function xlInfo(text: string): XlInfo {
  const kv = parseXlInfo(text);
  const num = (k: string) => {
    const v = kv[k];
    const n = v === undefined ? Number.NaN : Number(v);
    if (!Number.isFinite(n)) throw new Error(`xl info: missing or non-numeric ${k} (${v ?? "absent"})`);
    return n;
  };
  const version = kv.xen_version ?? `${kv.xen_major}.${kv.xen_minor}${kv.xen_extra ?? ""}`;
  return {
    hostname: kv.host ?? "",
    xenVersion: version,
    cpus: num("nr_cpus"),
    numaNodes: kv.nr_nodes ? num("nr_nodes") : 1,
    cpuMhz: kv.cpu_mhz ? Number.parseFloat(kv.cpu_mhz) : undefined,
    totalMemoryMiB: num("total_memory"),
    freeMemoryMiB: num("free_memory"),
    scheduler: kv.xen_scheduler ?? "",
    virtCaps: (kv.virt_caps ?? "").split(/\s+/).filter(Boolean),
    xenCaps: (kv.xen_caps ?? "").split(/\s+/).filter(Boolean),
  };
}

/** Guest types a host can run and live-migrate, from virt_caps (pv hvm hap shadow ...). */
export function capabilities(virtCaps: string[]): {
  guestTypes: GuestType[];
  liveMigratable: GuestType[];
  hap: boolean;
  shadow: boolean;
} {
  const has = (c: string) => virtCaps.includes(c);
  const hap = has("hap");
  const shadow = has("shadow");
  const guestTypes: GuestType[] = [];
  if (has("pv")) guestTypes.push("pv");
  // PVH and HVM need hardware virtualisation (hvm) and, in practice, HAP or shadow for paging.
  if (has("hvm") && (hap || shadow)) guestTypes.push("pvh", "hvm");
  // Live migration needs log-dirty: HAP for pvh/hvm, shadow paging for pv.
  const liveMigratable = guestTypes.filter((t) => (t === "pv" ? shadow : hap || shadow));
  return { guestTypes, liveMigratable, hap, shadow };
}

const stateOf = (flags: string, vcpus: number): HypervisorState => {
  // r running, b blocked, p paused, s shutdown, c crashed, d dying
  if (flags.includes("d")) return "dying";
  // No flag and no vCPU: a shell a failed build left, that Xen has not freed yet; it runs nothing.
  if (vcpus === 0 && !/[rbpsc]/.test(flags)) return "dying";
  if (flags.includes("c")) return "crashed";
  if (flags.includes("s")) return "shutdown";
  if (flags.includes("p")) return "paused";
  if (flags.includes("r")) return "running";
  return "blocked";
};

/** Splits a domain name into its base and xl's migration suffix. */
export function splitMigrationName(name: string): { name: string; migration?: "incoming" | "migratedaway" } {
  for (const s of ["incoming", "migratedaway"] as const) {
    if (name.endsWith(`--${s}`)) return { name: name.slice(0, -(s.length + 2)), migration: s };
  }
  return { name };
}

/**
 * `xl list -v`: Name ID Mem VCPUs State Time(s) UUID Reason-Code Security-Label.
 * Domain-0 is left out; a domain still being built may show "(null)" as its name.
 */
export function parseXlListVerbose(text: string): DomainInfo[] {
  const out: DomainInfo[] = [];
  for (const line of text.split("\n")) {
    const m =
      /^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([rbpscd-]{6})\s+([\d.]+)\s+([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/.exec(
        line.trim(),
      );
    if (!m) continue;
    const [, rawName = "", id, mem, vcpus, flags = "", time, uuid = ""] = m;
    const domid = Number(id);
    if (domid === 0) continue;
    const { name, migration } = splitMigrationName(rawName === "(null)" ? "" : rawName);
    out.push({
      uuid,
      name,
      migration,
      domid,
      state: stateOf(flags, Number(vcpus)),
      memoryMiB: Number(mem),
      vcpus: Number(vcpus),
      cpuTimeSeconds: Number(time),
    });
  }
  return out;
}

/** dom0's memory and vCPUs from `xl list 0` (or `xl list -v`). */
export function parseDom0(text: string): { memoryMiB: number; vcpus: number } | undefined {
  const m = /^Domain-0\s+0\s+(\d+)\s+(\d+)/m.exec(text);
  return m ? { memoryMiB: Number(m[1]), vcpus: Number(m[2]) } : undefined;
}

/** One domain of `xl list -l`: libxl_domain_config in libxl's JSON encoding. */
export interface XlDomainJson {
  domid: number | null;
  config: {
    c_info: { type?: string; name?: string; uuid?: string };
    b_info: {
      max_vcpus?: number;
      max_memkb?: number;
      target_memkb?: number;
      kernel?: string;
      ramdisk?: string;
      cmdline?: string;
      sched_params?: { sched?: string; weight?: number; cap?: number };
      [key: string]: unknown;
    };
    disks?: Array<{ pdev_path?: string; vdev?: string; format?: string; readwrite?: number; is_cdrom?: number }>;
    nics?: Array<{ devid?: number; mac?: string; bridge?: string; model?: string; ip?: string }>;
    pcidevs?: Array<{ func?: number; dev?: number; bus?: number; domain?: number }>;
    on_crash?: string;
    on_reboot?: string;
    on_poweroff?: string;
  };
}

export interface XlDomainDetails {
  domid: number | undefined;
  uuid: string;
  name: string;
  migration?: "incoming" | "migratedaway";
  type: GuestType | undefined;
  maxMemoryMiB: number | undefined;
  targetMemoryMiB: number | undefined;
  maxVcpus: number | undefined;
  kernel?: string;
  disks: Array<{ vdev: string; target: string; format: string; readOnly: boolean; cdrom: boolean }>;
  macs: string[];
  pci: string[];
  weight?: number;
  cap?: number;
}

const guestType = (t: string | undefined): GuestType | undefined =>
  t === "pv" || t === "pvh" || t === "hvm" ? t : undefined;
const hex = (n: number | undefined, w: number) => (n ?? 0).toString(16).padStart(w, "0");

/** `xl list -l`: a JSON array (an empty output when there are no domains besides dom0). */
export function parseXlListLong(text: string): XlDomainDetails[] {
  const trimmed = text.trim();
  if (!trimmed) return [];
  const arr = JSON.parse(trimmed) as XlDomainJson[];
  if (!Array.isArray(arr)) throw new Error("xl list -l: expected a JSON array");
  return arr
    .filter((d) => d.domid !== 0)
    .map((d) => {
      const c = d.config;
      const kb = (v: number | undefined) => (typeof v === "number" && v >= 0 ? Math.round(v / 1024) : undefined);
      const { name, migration } = splitMigrationName(c.c_info.name ?? "");
      return {
        domid: d.domid ?? undefined,
        uuid: c.c_info.uuid ?? "",
        name,
        migration,
        type: guestType(c.c_info.type),
        maxMemoryMiB: kb(c.b_info.max_memkb),
        targetMemoryMiB: kb(c.b_info.target_memkb),
        maxVcpus: c.b_info.max_vcpus,
        kernel: c.b_info.kernel,
        disks: (c.disks ?? []).map((x) => ({
          vdev: x.vdev ?? "",
          target: x.pdev_path ?? "",
          format: x.format ?? "raw",
          readOnly: x.readwrite === 0,
          cdrom: x.is_cdrom === 1,
        })),
        macs: (c.nics ?? []).map((n) => n.mac ?? ""),
        pci: (c.pcidevs ?? []).map((p) => `${hex(p.domain, 4)}:${hex(p.bus, 2)}:${hex(p.dev, 2)}.${p.func ?? 0}`),
        weight: c.b_info.sched_params?.weight,
        cap: c.b_info.sched_params?.cap,
      };
    });
}

export type MigrateLine =
  | { kind: "progress"; progress: MigrationProgress }
  | { kind: "suspended" }
  | { kind: "permission" }
  | { kind: "success" }
  | { kind: "failed"; resumed: boolean; message: string };

/** One line of `xl migrate` (sender) output. */
export function parseMigrateLine(line: string, pageBytes = 4096): MigrateLine | undefined {
  const it = /Frames iteration (\d+) of (\d+):\s+(\d+)\/(\d+)/.exec(line);
  if (it)
    return {
      kind: "progress",
      progress: { round: Number(it[1]) + 1, bytesSent: Number(it[3]) * pageBytes, dirtyPages: Number(it[4]) },
    };
  if (/domain (?:now |has )?suspended|suspending domain/i.test(line)) return { kind: "suspended" };
  if (/Giving target permission to start/.test(line)) return { kind: "permission" };
  if (/^Migration successful\.?$/.test(line.trim())) return { kind: "success" };
  if (/Migration failed, resuming at sender/.test(line)) return { kind: "failed", resumed: true, message: line.trim() };
  if (/failed to resume at sender|cannot resume|target may be running/i.test(line))
    return { kind: "failed", resumed: false, message: line.trim() };
  return undefined;
}
