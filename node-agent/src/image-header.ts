// What a disk image's header says about other files: a qcow, qcow2 or qed
// image may name a backing file that QEMU opens with the image, and a
// differencing VHD names its parent. Such a file is a dom0 path the tenant
// chose by writing the image, so the agent must judge it like any path in
// the spec (confine.ts). Pure: the bytes come from paths.ts.

/** Formats that can name another file; raw cannot. */
export const CHAINED_FORMATS = new Set(["qcow", "qcow2", "qed", "vhd"]);

/** How many bytes of an image's start `readBacking` needs (the name itself may lie further). */
export const HEADER_BYTES = 512;
/** QEMU's own limit on a backing file name (qcow2 spec: at most 1023 bytes). */
export const MAX_BACKING_NAME = 1023;

/** Where a backing file's name is stored in the image, when it has one. */
export type BackingRef =
  | { kind: "none" }
  | { kind: "name"; offset: number; length: number }
  /** A file QEMU would follow that the agent does not admit (a VHD parent, an unreadable header). */
  | { kind: "refused"; why: string };

/** The image format the header's magic shows, or undefined (raw, or something unknown). */
export function probeFormat(head: Buffer): "qcow" | "qcow2" | "qed" | "vhd" | undefined {
  if (head.length >= 8 && head.readUInt32BE(0) === 0x514649fb) return head.readUInt32BE(4) === 1 ? "qcow" : "qcow2";
  if (head.length >= 4 && head.readUInt32LE(0) === 0x00444551) return "qed";
  if (head.subarray(0, 8).toString("latin1") === "conectix") return "vhd";
  return undefined;
}

/**
 * Reads the start of an image of the given format (`head`, at least HEADER_BYTES when the file is
 * that long; `footer` the last 512 bytes, for VHD) and says where its backing file's name is.
 */
export function readBacking(format: string, head: Buffer, footer?: Buffer): BackingRef {
  switch (format) {
    case "qcow":
    case "qcow2": {
      if (head.length < 20 || head.readUInt32BE(0) !== 0x514649fb)
        return { kind: "refused", why: `not a ${format} image (no QFI magic)` };
      // qcow (v1) and qcow2 (v2, v3) both keep backing_file_offset (u64) at 8 and its size (u32) at 16.
      const offset = head.readBigUInt64BE(8);
      const length = head.readUInt32BE(16);
      return named(offset, length);
    }
    case "qed": {
      if (head.length < 64 || head.readUInt32LE(0) !== 0x00444551)
        return { kind: "refused", why: "not a qed image (no QED magic)" };
      const hasBacking = (head.readBigUInt64LE(16) & 1n) === 1n;
      if (!hasBacking) return { kind: "none" };
      return named(BigInt(head.readUInt32LE(56)), head.readUInt32LE(60));
    }
    case "vhd": {
      // The footer's copy is authoritative; dynamic disks also keep one at the start.
      const f = footer && footer.subarray(0, 8).toString("latin1") === "conectix" ? footer : head;
      if (f.length < 64 || f.subarray(0, 8).toString("latin1") !== "conectix")
        return { kind: "refused", why: "not a vhd image (no conectix footer)" };
      const diskType = f.readUInt32BE(60);
      if (diskType === 4)
        return {
          kind: "refused",
          why: "a differencing VHD opens its parent image: flatten it (qemu-img convert) first",
        };
      return { kind: "none" };
    }
    default:
      return { kind: "none" };
  }
}

function named(offset: bigint, length: number): BackingRef {
  if (offset === 0n) return { kind: "none" };
  if (length === 0 || length > MAX_BACKING_NAME)
    return { kind: "refused", why: `the header names a backing file of ${length} bytes` };
  if (offset > BigInt(Number.MAX_SAFE_INTEGER))
    return { kind: "refused", why: "the backing file's name lies out of range" };
  return { kind: "name", offset: Number(offset), length };
}

/**
 * Where QEMU would open a backing file named `name` from an image at `imagePath`: relative names
 * are relative to the image's directory. Names with a protocol (`nbd:`, `json:`, `http:` ...)
 * reach beyond the file system and are refused.
 */
export function backingPath(imagePath: string, name: string): { path: string } | { refused: string } {
  if (name.includes("\0")) return { refused: "the backing file's name holds a NUL byte" };
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(name))
    return { refused: `the image names a backing file through a protocol (${name.slice(0, name.indexOf(":") + 1)})` };
  if (name.startsWith("/")) return { path: name };
  const dir = imagePath.slice(0, imagePath.lastIndexOf("/")) || "/";
  return { path: `${dir}/${name}` };
}
