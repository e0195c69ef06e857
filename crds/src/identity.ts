// Identity the system generates for a domain (kept in status, never in spec).
import { createHash } from "node:crypto";

/** A stable, locally administered-free MAC under Xen's OUI 00:16:3e, from the domain's UUID and NIC index. */
export function stableMac(uuid: string, index: number): string {
  const h = createHash("sha256").update(`${uuid}/${index}`).digest();
  const b = [h[0] ?? 0, h[1] ?? 0, h[2] ?? 0].map((x) => x.toString(16).padStart(2, "0"));
  return `00:16:3e:${b.join(":")}`;
}
