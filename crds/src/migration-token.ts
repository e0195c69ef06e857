// The token a migration's source agent presents to its target: claims that
// the operator assigned this migration, from this source to this target,
// signed with the migration CA's key (which only the operator holds) and
// verified with the CA certificate every host has. It expires in minutes,
// and the target refuses a token it has accepted before.
import { createPrivateKey, createPublicKey, sign, verify, X509Certificate } from "node:crypto";

export interface MigrationClaims {
  /** namespace/name of the XenMigration. */
  migration: string;
  uid: string;
  source: string;
  target: string;
  /** Expiry, in seconds since the epoch. */
  exp: number;
}

/** How long a token is good for from its issue. */
export const MIGRATION_TOKEN_SECONDS = 600;

const b64 = (b: Buffer | string) => Buffer.from(b).toString("base64url");

/** A token for these claims, signed with the CA's private key (PEM). */
export function signMigrationToken(claims: MigrationClaims, caKeyPem: string): string {
  const payload = b64(JSON.stringify(claims));
  const key = createPrivateKey(caKeyPem);
  // ECDSA and RSA both sign the SHA-256 of the payload; EdDSA keys hash themselves.
  const sig = sign(key.asymmetricKeyType === "ed25519" ? null : "sha256", Buffer.from(`v1.${payload}`), key);
  return `v1.${payload}.${b64(sig)}`;
}

export type TokenCheck = { ok: true; claims: MigrationClaims } | { ok: false; reason: string };

/** Checks a token's signature against the CA certificate (PEM), its expiry, and that it is for this migration. */
export function verifyMigrationToken(
  token: string,
  caCertPem: string | Buffer,
  expect: { uid: string; source: string; target: string },
  nowMs: number,
): TokenCheck {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[0] !== "v1") return { ok: false, reason: "not a migration token" };
  const [, payload = "", sig = ""] = parts;
  let valid = false;
  try {
    const pub = createPublicKey(new X509Certificate(caCertPem).publicKey.export({ type: "spki", format: "pem" }));
    valid = verify(
      pub.asymmetricKeyType === "ed25519" ? null : "sha256",
      Buffer.from(`v1.${payload}`),
      pub,
      Buffer.from(sig, "base64url"),
    );
  } catch {
    valid = false;
  }
  if (!valid) return { ok: false, reason: "the token is not signed by the migration CA" };
  let c: MigrationClaims;
  try {
    c = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as MigrationClaims;
  } catch {
    return { ok: false, reason: "the token's claims do not parse" };
  }
  if (typeof c.exp !== "number" || c.exp * 1000 <= nowMs) return { ok: false, reason: "the token has expired" };
  if (c.exp * 1000 > nowMs + 2 * MIGRATION_TOKEN_SECONDS * 1000)
    return { ok: false, reason: "the token's expiry is too far ahead" };
  if (c.uid !== expect.uid) return { ok: false, reason: "the token is for another migration" };
  if (c.source !== expect.source || c.target !== expect.target)
    return {
      ok: false,
      reason: `the token is for ${c.source} to ${c.target}, not ${expect.source} to ${expect.target}`,
    };
  return { ok: true, claims: c };
}
