// The sim driver's migration stream. Framing: a type byte, a 4-byte
// big-endian length, the payload. Control frames carry JSON; page frames
// carry the (scaled) memory bytes. A pre-copy round goes on the wire as its
// pages' bytes times `wireScale` and lasts its modelled time times `timeScale`.
import type { Duplex } from "node:stream";
import { PAGE_BYTES } from "./precopy.ts";

export type FrameType = "H" | "A" | "P" | "R" | "S" | "Y" | "G" | "D" | "X";

export interface Frame {
  type: FrameType;
  payload: Buffer;
}

export function encodeFrame(type: FrameType, payload: Buffer | object): Buffer {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(JSON.stringify(payload));
  const head = Buffer.alloc(5);
  head.write(type, 0, "ascii");
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Writes a frame, waiting for the stream to drain when its buffer is full. */
export async function writeFrame(s: Duplex, type: FrameType, payload: Buffer | object): Promise<void> {
  if (s.destroyed || s.writableEnded) throw new Error("migration stream closed");
  if (!s.write(encodeFrame(type, payload))) {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        s.off("drain", ok);
        s.off("close", closed);
        s.off("error", done);
        err ? reject(err) : resolve();
      };
      const ok = () => done();
      const closed = () => done(new Error("migration stream closed"));
      s.once("drain", ok);
      s.once("close", closed);
      s.once("error", done);
    });
  }
}

/** Reads frames from a stream, one at a time, in order. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  private frames: Frame[] = [];
  private waiter: ((f: Frame | Error) => void) | undefined;
  private ended: Error | undefined;

  constructor(s: Duplex) {
    s.on("data", (chunk: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      while (this.buf.length >= 5) {
        const len = this.buf.readUInt32BE(1);
        if (this.buf.length < 5 + len) break;
        const f = { type: this.buf.toString("ascii", 0, 1) as FrameType, payload: this.buf.subarray(5, 5 + len) };
        this.buf = this.buf.subarray(5 + len);
        this.push(f);
      }
    });
    const end = (err?: Error) => {
      this.ended ??= err ?? new Error("migration stream ended");
      const w = this.waiter;
      this.waiter = undefined;
      w?.(this.ended);
    };
    s.on("end", () => end());
    s.on("close", () => end());
    s.on("error", (e) => end(e));
  }

  private push(f: Frame): void {
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w(f);
    } else this.frames.push(f);
  }

  /** The next frame; rejects when the stream ends first, or after `timeoutMs`. */
  next(timeoutMs = 60_000): Promise<Frame> {
    const f = this.frames.shift();
    if (f) return Promise.resolve(f);
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`no migration frame within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (x) => {
        clearTimeout(t);
        x instanceof Error ? reject(x) : resolve(x);
      };
    });
  }

  /** The next frame, which must be of `type` (an X frame from the peer is its error). */
  async expect<T = unknown>(type: FrameType, timeoutMs?: number): Promise<T> {
    const f = await this.next(timeoutMs);
    if (f.type === "X")
      throw new Error(`peer failed: ${(JSON.parse(f.payload.toString()) as { error: string }).error}`);
    if (f.type !== type) throw new Error(`expected a ${type} frame, got ${f.type}`);
    return (f.payload.length ? JSON.parse(f.payload.toString()) : {}) as T;
  }
}

/** The scaled bytes a round of `pages` puts on the wire (at least one, so every round is seen). */
export function wireBytes(pages: number, wireScale: number): number {
  return Math.max(1, Math.round(pages * PAGE_BYTES * wireScale));
}

/**
 * Sends one round's (scaled) bytes and a round marker, and takes its modelled time (scaled); an
 * abort stops it within one chunk or 100 ms.
 */
export async function sendRound(
  transport: Duplex,
  round: { pages: number; seconds: number },
  scale: { wireScale: number; timeScale: number },
  signal?: AbortSignal,
): Promise<void> {
  const start = Date.now();
  let wire = wireBytes(round.pages, scale.wireScale);
  const chunk = Buffer.alloc(Math.min(wire, 64 * 1024), 0xa5);
  while (wire > 0) {
    if (signal?.aborted) throw new Error("aborted");
    const n = Math.min(wire, chunk.length);
    await writeFrame(transport, "P", n === chunk.length ? chunk : chunk.subarray(0, n));
    wire -= n;
  }
  await writeFrame(transport, "R", { pages: round.pages });
  const end = start + round.seconds * 1000 * scale.timeScale;
  while (Date.now() < end) {
    if (signal?.aborted) throw new Error("aborted");
    await new Promise((r) => setTimeout(r, Math.min(100, end - Date.now())));
  }
}
