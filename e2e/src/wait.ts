/** Polls `fn` until it holds (errors count as not yet), or fails naming what it waited for. */
export async function until(
  what: string,
  fn: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
  everyMs = 100,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      if (await fn()) return;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last})` : ""}`);
}
