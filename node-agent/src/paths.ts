// Where a path leads on this host: the I/O behind confine.ts. Each existing
// component is looked at with lstat and symbolic links are followed (their
// targets read, as the kernel does, so a dangling link is followed too); from
// the first missing component on, the rest is appended lexically: a missing
// component cannot be a link, and xl then fails on a missing file.
import { lstat, open, readFile, readlink, stat } from "node:fs/promises";
import { posix } from "node:path";
import type { XenDomainSpec } from "@kubexen/crds";
import {
  type BackingFile,
  chainedDisks,
  confine,
  confineChains,
  type HostPolicy,
  type ImageChain,
  type PathFacts,
  pathsToResolve,
  type Violation,
} from "./confine.ts";
import { backingPath, HEADER_BYTES, probeFormat, readBacking } from "./image-header.ts";

/** The kernel's limit on links followed in one lookup (SYMLOOP_MAX / MAXSYMLINKS). */
const MAX_LINKS = 40;

const missing = (err: unknown) => {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
};

/** The path with every symbolic link and `..` resolved, as far as it exists. */
export async function resolveHostPath(path: string): Promise<string> {
  if (!path.startsWith("/")) throw new Error(`${path} is not an absolute path`);
  const rest = path.split("/").filter((s) => s !== "" && s !== ".");
  let cur = "/"; // Always a real, link-free directory that exists.
  let links = 0;
  while (rest.length) {
    const seg = rest.shift() as string;
    if (seg === "..") {
      cur = posix.dirname(cur);
      continue;
    }
    const next = posix.join(cur, seg);
    let st: Awaited<ReturnType<typeof lstat>>;
    try {
      st = await lstat(next);
    } catch (err) {
      if (missing(err)) return posix.normalize(posix.join(next, ...rest));
      throw err;
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_LINKS) throw new Error(`too many levels of symbolic links in ${path}`);
      const target = await readlink(next);
      if (target.startsWith("/")) cur = "/";
      rest.unshift(...target.split("/").filter((s) => s !== "" && s !== "."));
      continue;
    }
    if (!st.isDirectory() && rest.length) {
      // A file with more after it: the lookup fails there (ENOTDIR); nothing further is a link.
      return posix.normalize(posix.join(next, ...rest));
    }
    cur = next;
  }
  return cur;
}

/** What confine needs to know of each path: where it resolves and whether that is a block device. */
export async function pathFacts(path: string): Promise<PathFacts> {
  try {
    const resolved = await resolveHostPath(path);
    const blockDevice = await stat(resolved).then(
      (s) => s.isBlockDevice(),
      () => false,
    );
    return { resolved, blockDevice };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** Facts for each path, looked up concurrently. */
export async function hostPathFacts(paths: readonly string[]): Promise<Map<string, PathFacts>> {
  const entries = await Promise.all(paths.map(async (p) => [p, await pathFacts(p)] as const));
  return new Map(entries);
}

/** Longest backing chain followed; QEMU's images rarely chain more than a few. */
const MAX_CHAIN = 16;

async function readAt(path: string, position: number, length: number): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, position);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** The first HEADER_BYTES and (for VHD) the last 512 bytes of a file or block device. */
async function readEnds(path: string): Promise<{ head: Buffer; footer: Buffer | undefined }> {
  const head = await readAt(path, 0, HEADER_BYTES);
  const st = await stat(path);
  // A block device's stat size is 0: sysfs has it, in 512-byte sectors.
  const size = st.isBlockDevice() ? await blockDeviceBytes(st.rdev) : st.size;
  const footer = size >= 512 ? await readAt(path, size - 512, 512) : undefined;
  return { head, footer };
}

async function blockDeviceBytes(rdev: number): Promise<number> {
  const major = Number((BigInt(rdev) >> 8n) & 0xfffn) | Number((BigInt(rdev) >> 32n) & ~0xfffn);
  const minor = Number(BigInt(rdev) & 0xffn) | Number((BigInt(rdev) >> 12n) & ~0xffn);
  const sectors = Number((await readFile(`/sys/dev/block/${major}:${minor}/size`, "utf8")).trim());
  return Number.isFinite(sectors) ? sectors * 512 : 0;
}

/** Follows an image's backing files from its header, each looked up as confine's paths are. */
export async function imageChain(resolved: string, format: string): Promise<ImageChain> {
  const files: BackingFile[] = [];
  let cur = resolved;
  let fmt = format;
  for (let depth = 0; ; depth++) {
    if (depth >= MAX_CHAIN) return { error: `its backing chain is longer than ${MAX_CHAIN} images` };
    let ends: Awaited<ReturnType<typeof readEnds>>;
    try {
      ends = await readEnds(cur);
    } catch (err) {
      // A missing image makes xl fail on its own; anything else unreadable is not admitted.
      if (missing(err) && depth === 0) return { files };
      return { error: `its image cannot be read: ${(err as Error).message}` };
    }
    const ref = readBacking(fmt, ends.head, ends.footer);
    if (ref.kind === "none") return { files };
    if (ref.kind === "refused") return { error: ref.why };
    const name = (await readAt(cur, ref.offset, ref.length)).toString("utf8");
    const where = backingPath(cur, name);
    if ("refused" in where) return { error: where.refused };
    const facts = await pathFacts(where.path);
    files.push({ name, path: where.path, facts });
    if ("error" in facts) return { files };
    cur = facts.resolved;
    // QEMU probes a backing file's format unless the header says it; probing finds any chain it has.
    fmt = probeFormat(await readAt(cur, 0, HEADER_BYTES).catch(() => Buffer.alloc(0))) ?? "raw";
  }
}

/**
 * Every dom0 resource of the spec this host's policy refuses: its paths where they resolve, and
 * the backing files the images it allows name in their headers (read only once the image's own
 * path is allowed: the agent reads nothing outside the roots for a tenant).
 */
export async function hostResourceViolations(spec: XenDomainSpec, policy: HostPolicy): Promise<Violation[]> {
  const facts = await hostPathFacts(pathsToResolve(spec, policy));
  const violations = confine({ spec, policy, facts });
  if (violations.length) return violations;
  const chains = new Map<string, { source: string; chain: ImageChain }>();
  for (const [field, disk] of chainedDisks(spec)) {
    const f = facts.get(disk.source);
    if (!f || "error" in f) continue;
    chains.set(field, { source: disk.source, chain: await imageChain(f.resolved, disk.format) });
  }
  return confineChains(policy, facts, chains);
}
