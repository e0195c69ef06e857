// Where a path leads on this host: the I/O behind confine.ts. Each existing
// component is looked at with lstat and symbolic links are followed (their
// targets read, as the kernel does, so a dangling link is followed too); from
// the first missing component on, the rest is appended lexically: a missing
// component cannot be a link, and xl then fails on a missing file.
import { lstat, readlink, stat } from "node:fs/promises";
import { posix } from "node:path";
import type { PathFacts } from "./confine.ts";

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
