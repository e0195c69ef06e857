// Migration tokens the target has accepted, kept on disk so that a token is
// refused after its first use even when the agent restarted in between.
// Entries are dropped once their token has expired: an expired token is
// refused anyway.
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { dirname } from "node:path";

/** uid -> expiry (ms since the epoch). */
export type UsedEntries = Record<string, number>;

/** The entries still worth keeping at `nowMs`. */
export function pruneUsed(entries: UsedEntries, nowMs: number): UsedEntries {
  const out: UsedEntries = {};
  for (const [uid, exp] of Object.entries(entries)) if (typeof exp === "number" && exp > nowMs) out[uid] = exp;
  return out;
}

export class UsedTokens {
  private entries: UsedEntries = {};
  private readonly file: string;
  private readonly now: () => number;
  private writing: Promise<void> = Promise.resolve();

  constructor(file: string, now: () => number = Date.now) {
    this.file = file;
    this.now = now;
  }

  /** Reads what an earlier run recorded; a missing file is an empty record, a corrupt one an error. */
  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    const parsed = JSON.parse(text) as UsedEntries;
    this.entries = pruneUsed(parsed, this.now());
  }

  has(uid: string): boolean {
    const exp = this.entries[uid];
    return exp !== undefined && exp > this.now();
  }

  /**
   * Records a token as used and returns once the record is on disk (written to a temporary file,
   * synced, renamed over the old one): the stream is accepted only after this resolves.
   * Returns false when the uid was already used.
   */
  async use(uid: string, expMs: number): Promise<boolean> {
    if (this.has(uid)) return false;
    this.entries = { ...pruneUsed(this.entries, this.now()), [uid]: expMs };
    const snapshot = JSON.stringify(this.entries);
    const write = this.writing.then(() => persist(this.file, snapshot));
    this.writing = write.catch(() => {});
    await write;
    return true;
  }
}

async function persist(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, "w", 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}
