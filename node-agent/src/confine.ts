// Which dom0 files, programs and bridges a domain may make the agent hand to
// xl. The API (CRD patterns, admission) is checked elsewhere; this is the
// agent's own last check, so it trusts nothing the spec says: every path is
// judged by where it resolves on this host (symlinks and `..` followed).
// Pure: the facts (what each path resolves to) come from paths.ts.
import { posix } from "node:path";
import type { XenDomainSpec } from "@kubexen/crds";

/** The dom0 directories and bridges an administrator lets domains use. */
export interface HostPolicy {
  /** Absolute directories; a path must resolve strictly inside one. */
  pathRoots: readonly string[];
  /** Bridge names a guest interface may be attached to. */
  bridges: readonly string[];
  /** PCI devices (0000:03:00.0 form) a guest may be given; none unless the administrator lists them. */
  pciDevices?: readonly string[];
}

export const DEFAULT_PATH_ROOTS: readonly string[] = ["/var/lib/kubexen/images", "/var/lib/xen/images"];
export const DEFAULT_BRIDGES: readonly string[] = ["xenbr0"];
/** Passthrough hands a guest the device's DMA: only what the administrator listed, nothing by default. */
export const DEFAULT_PCI_DEVICES: readonly string[] = [];
/** The one bootloader xl may run in dom0 for a guest: anything else is a dom0 program of the tenant's choosing. */
export const ALLOWED_BOOTLOADER = "pygrub";
/** The reason domains refused by this check carry (Stalled, TargetReady, events). */
export const FORBIDDEN_HOST_RESOURCE = "ForbiddenHostResource";

/** What one path is on this host: where it resolves, and whether that is a block device; or why it cannot be told. */
export type PathFacts = { resolved: string; blockDevice: boolean } | { error: string };

/** A path the spec hands to xl, with the field that names it. */
export interface HostPathField {
  field: string;
  path: string;
}

/** Every path of the spec that reaches xl (kernel, ramdisk, each disk's source), by field. */
export function hostPathFields(spec: XenDomainSpec): HostPathField[] {
  const out: HostPathField[] = [];
  if (spec.boot?.kernel !== undefined) out.push({ field: "spec.boot.kernel", path: spec.boot.kernel });
  if (spec.boot?.ramdisk !== undefined) out.push({ field: "spec.boot.ramdisk", path: spec.boot.ramdisk });
  (spec.disks ?? []).forEach((d, i) => {
    out.push({ field: `spec.disks[${i}].source`, path: d.source });
  });
  return out;
}

/** The disks whose format can name other files in its header (all but raw), by field. */
export function chainedDisks(spec: XenDomainSpec): Array<[string, { source: string; format: string }]> {
  return (spec.disks ?? []).flatMap(
    (d, i): Array<[string, { source: string; format: string }]> =>
      d.format && d.format !== "raw" && d.source.startsWith("/")
        ? [[`spec.disks[${i}].source`, { source: d.source, format: d.format }]]
        : [],
  );
}

/** The paths whose facts `confine` needs: the spec's absolute paths and the policy's roots. */
export function pathsToResolve(spec: XenDomainSpec, policy: HostPolicy): string[] {
  const paths = hostPathFields(spec)
    .map((f) => f.path)
    .filter((p) => p.startsWith("/"));
  return [...new Set([...paths, ...policy.pathRoots])];
}

export interface ConfineInput {
  spec: XenDomainSpec;
  policy: HostPolicy;
  /** Facts for every path of `pathsToResolve`; a path without facts is refused. */
  facts: ReadonlyMap<string, PathFacts>;
}

/** One refused field: what the tenant sees (`message`), and the resolved target for the host's log only. */
export interface Violation {
  field: string;
  message: string;
  resolved?: string;
}

/** Every field of the spec that would make the agent use a dom0 resource the policy does not allow; empty: allowed. */
export function confine(i: ConfineInput): Violation[] {
  const { spec, policy, facts } = i;
  const out: Violation[] = [];
  const bootloader = spec.boot?.bootloader;
  if (bootloader !== undefined && bootloader !== ALLOWED_BOOTLOADER)
    out.push({
      field: "spec.boot.bootloader",
      message: `${bootloader} is not allowed (only ${ALLOWED_BOOTLOADER})`,
    });
  const rootList = policy.pathRoots.length ? policy.pathRoots.join(", ") : "none";
  for (const { field, path } of hostPathFields(spec)) {
    if (!path.startsWith("/")) {
      out.push({ field, message: `${path} is not an absolute path` });
      continue;
    }
    const f = facts.get(path);
    if (!f || "error" in f) {
      out.push({ field, message: `${path} cannot be resolved on this host${f ? `: ${f.error}` : ""}` });
      continue;
    }
    if (allowedPath(path, f, policy, facts)) continue;
    const isRoot = policy.pathRoots.some((r) => samePath(lexical(path), r) || samePath(f.resolved, rootOf(r, facts)));
    // The resolved target is for the host's log: the tenant learns only that the path is refused.
    out.push({
      field,
      message: isRoot
        ? `${path} is an allowed root itself, not a path inside one (${rootList})`
        : `${path} resolves outside the allowed roots (${rootList})`,
      resolved: f.resolved,
    });
  }
  const pci = policy.pciDevices ?? DEFAULT_PCI_DEVICES;
  (spec.pciDevices ?? []).forEach((d, idx) => {
    if (!pciAllowed(d, pci))
      out.push({
        field: `spec.pciDevices[${idx}]`,
        message: `${d} is not a PCI device this host passes through (${pci.length ? pci.join(", ") : "none"})`,
      });
  });
  (spec.networks ?? []).forEach((n, idx) => {
    if (!policy.bridges.includes(n.bridge))
      out.push({
        field: `spec.networks[${idx}].bridge`,
        message: `${n.bridge} is not an allowed bridge (${policy.bridges.length ? policy.bridges.join(", ") : "none"})`,
      });
  });
  return out;
}

/** One file an image's header makes QEMU open: the name as written, where it is looked up, what that is. */
export interface BackingFile {
  name: string;
  path: string;
  facts: PathFacts;
}

/** An image's backing chain as read from the headers, or why it cannot be admitted. */
export type ImageChain = { files: BackingFile[] } | { error: string };

/**
 * The disks whose image headers name files outside the roots (paths.ts reads the chains of the
 * disks `confine` allowed, keyed by field). Each backing file is judged as the disk's own path is.
 */
export function confineChains(
  policy: HostPolicy,
  facts: ReadonlyMap<string, PathFacts>,
  chains: ReadonlyMap<string, { source: string; chain: ImageChain }>,
): Violation[] {
  const out: Violation[] = [];
  const rootList = policy.pathRoots.length ? policy.pathRoots.join(", ") : "none";
  for (const [field, { source, chain }] of chains) {
    if ("error" in chain) {
      out.push({ field, message: `${source}: ${chain.error}` });
      continue;
    }
    for (const b of chain.files) {
      if ("error" in b.facts) {
        out.push({
          field,
          message: `${source} names a backing file ${b.name} that cannot be resolved: ${b.facts.error}`,
        });
        break;
      }
      if (!allowedPath(b.path, b.facts, policy, facts)) {
        out.push({
          field,
          message: `${source} names a backing file ${b.name} that resolves outside the allowed roots (${rootList})`,
          resolved: b.facts.resolved,
        });
        break;
      }
    }
  }
  return out;
}

/** Whether a device (any hex case) is in the allowed list. */
export function pciAllowed(device: string, allowed: readonly string[]): boolean {
  const d = device.toLowerCase();
  return allowed.some((a) => a.toLowerCase() === d);
}

/** One line naming every refused field, for conditions and events. */
export function describeViolations(v: readonly Violation[]): string {
  return v.map((x) => `${x.field}: ${x.message}`).join("; ");
}

function allowedPath(
  path: string,
  f: { resolved: string; blockDevice: boolean },
  policy: HostPolicy,
  facts: ReadonlyMap<string, PathFacts>,
): boolean {
  for (const root of policy.pathRoots) {
    const r = rootOf(root, facts);
    if (r !== undefined && inside(f.resolved, r)) return true;
    // udev makes /dev/<vg>/<lv>, /dev/mapper/* and /dev/disk/by-*/* as symlinks to /dev/dm-N or
    // /dev/sdX: they resolve out of the root by design. udev owns them, not a tenant, so a path
    // written inside a root under /dev may resolve to a block device node directly under /dev.
    // Written without `..`, so that what the tenant wrote and where it resolves cannot disagree.
    if (
      inside(root, "/dev") &&
      !segments(path).includes("..") &&
      inside(lexical(path), root) &&
      f.blockDevice &&
      posix.dirname(f.resolved) === "/dev"
    )
      return true;
  }
  return false;
}

/** A root as this host resolves it; undefined when it cannot be resolved (it then allows nothing). */
function rootOf(root: string, facts: ReadonlyMap<string, PathFacts>): string | undefined {
  const f = facts.get(root);
  return f && !("error" in f) ? f.resolved : undefined;
}

function segments(p: string): string[] {
  return p.split("/").filter((s) => s !== "" && s !== ".");
}

/** The absolute path with `.`, `..` and repeated or trailing slashes removed, lexically. */
export function lexical(p: string): string {
  const n = posix.normalize(`/${p}`);
  return n.length > 1 && n.endsWith("/") ? n.slice(0, -1) : n;
}

/** Whether `p` lies strictly inside directory `root`, segment by segment (never a string prefix). */
export function inside(p: string, root: string): boolean {
  const ps = segments(lexical(p));
  const rs = segments(lexical(root));
  return ps.length > rs.length && rs.every((s, i) => ps[i] === s);
}

function samePath(a: string | undefined, b: string | undefined): boolean {
  return a !== undefined && b !== undefined && lexical(a) === lexical(b);
}

/** Why a policy root or bridge from the command line is unusable; undefined when it is fine. */
export function invalidRoot(root: string): string | undefined {
  if (!root.startsWith("/")) return `${root} is not an absolute path`;
  if (lexical(root) !== root) return `${root} is not normalised (write ${lexical(root)})`;
  if (root === "/") return "/ would allow every file of the host";
  return undefined;
}

export function invalidPciDevice(device: string): string | undefined {
  return /^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/.test(device)
    ? undefined
    : `${device} is not a PCI address in 0000:03:00.0 form`;
}

export function invalidBridge(bridge: string): string | undefined {
  return /^[A-Za-z0-9_.-]{1,15}$/.test(bridge)
    ? undefined
    : `${bridge} is not a bridge name ([A-Za-z0-9_.-], at most 15)`;
}
