// Migration tokens: signed by the operator with the migration CA's key,
// checked by the target with the CA certificate, bound to one migration, its
// source and target, and short-lived.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { MIGRATION_TOKEN_SECONDS, signMigrationToken, verifyMigrationToken } from "../src/index.ts";

function ca(kind: "ec" | "rsa"): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), "token-ca-"));
  const key = join(dir, "ca.key");
  const crt = join(dir, "ca.crt");
  const newkey = kind === "ec" ? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] : ["-newkey", "rsa:2048"];
  execFileSync(
    "openssl",
    ["req", "-x509", ...newkey, "-nodes", "-keyout", key, "-subj", "/CN=ca", "-days", "1", "-out", crt],
    {
      stdio: "ignore",
    },
  );
  return { cert: readFileSync(crt, "utf8"), key: readFileSync(key, "utf8") };
}

const now = Date.parse("2026-12-04T12:00:00Z");
const claims = {
  migration: "apps/web-move",
  uid: "0b6f3c1e-1111-4222-8333-944455556666",
  source: "xen-01",
  target: "xen-02",
  exp: now / 1000 + MIGRATION_TOKEN_SECONDS,
};
const expect = { uid: claims.uid, source: "xen-01", target: "xen-02" };

describe("migration tokens", () => {
  for (const kind of ["ec", "rsa"] as const) {
    it(`verify with the CA certificate that signed them (${kind})`, () => {
      const c = ca(kind);
      const t = signMigrationToken(claims, c.key);
      assert.deepEqual(verifyMigrationToken(t, c.cert, expect, now), { ok: true, claims });
    });
  }

  it("are refused when forged, altered, expired, for another migration or another pair of hosts", () => {
    const c = ca("ec");
    const other = ca("ec");
    const t = signMigrationToken(claims, c.key);
    const [v, payload, sig] = t.split(".");
    const altered = `${v}.${Buffer.from(JSON.stringify({ ...claims, target: "xen-03" })).toString("base64url")}.${sig}`;
    const cases: Array<[string, string, typeof expect, number, RegExp]> = [
      ["signed by another CA", signMigrationToken(claims, other.key), expect, now, /not signed by the migration CA/],
      ["claims altered", altered, { ...expect, target: "xen-03" }, now, /not signed by the migration CA/],
      ["no signature", `${v}.${payload}.`, expect, now, /not signed/],
      ["not a token", "hmac-hex-0123", expect, now, /not a migration token/],
      ["expired", t, expect, now + MIGRATION_TOKEN_SECONDS * 1000, /expired/],
      [
        "expiring too far ahead",
        signMigrationToken({ ...claims, exp: now / 1000 + 10 * MIGRATION_TOKEN_SECONDS }, c.key),
        expect,
        now,
        /too far ahead/,
      ],
      ["another migration", t, { ...expect, uid: "another" }, now, /another migration/],
      [
        "source and target swapped",
        t,
        { ...expect, source: "xen-02", target: "xen-01" },
        now,
        /xen-01 to xen-02, not xen-02 to xen-01/,
      ],
    ];
    for (const [what, token, exp, at, reason] of cases) {
      const r = verifyMigrationToken(token, c.cert, exp, at);
      assert.equal(r.ok, false, what);
      assert.match(r.ok ? "" : r.reason, reason, what);
    }
  });
});
