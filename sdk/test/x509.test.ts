// The SDK's small CA signs requests into certificates that verifiers chain to
// the CA, whoever made the CA: checked with OpenSSL itself, for a CA whose
// subject key identifier is its own choice (as Go's and Helm's CAs are).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { CertificateAuthority, makeCsr } from "../src/index.ts";

const dir = mkdtempSync(join(tmpdir(), "sdk-x509-"));
const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] }).toString();

describe("CertificateAuthority", () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const [kind, keyArgs] of [
    ["RSA", ["-newkey", "rsa:2048"]],
    ["EC P-256", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]],
  ] as const)
    it(`issues certificates OpenSSL chains to a ${kind} CA with a subject key identifier of its own`, async () => {
      const ca = join(dir, `${kind}-ca`);
      openssl(
        "req",
        "-x509",
        ...keyArgs,
        "-nodes",
        "-keyout",
        `${ca}.key`,
        "-out",
        `${ca}.crt`,
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        // Not a hash of the key: a verifier finds the issuer by this value alone.
        "-addext",
        "subjectKeyIdentifier=0102030405060708090a0b0c0d0e0f1011121314",
        "-addext",
        "authorityKeyIdentifier=keyid:always",
      );
      const authority = await CertificateAuthority.load(
        readFileSync(`${ca}.crt`, "utf8"),
        readFileSync(`${ca}.key`, "utf8"),
      );
      const { csr } = await makeCsr("host-1", ["host-1"], ["192.0.2.1"]);
      const cert = join(dir, `${kind}-host.crt`);
      writeFileSync(
        cert,
        await authority.sign(csr, { commonName: "host-1", dns: ["host-1"], ips: ["192.0.2.1"], seconds: 600 }),
      );
      assert.match(openssl("verify", "-purpose", "sslserver", "-CAfile", `${ca}.crt`, cert), /: OK/);
      assert.match(openssl("verify", "-purpose", "sslclient", "-CAfile", `${ca}.crt`, cert), /: OK/);
      const text = openssl("x509", "-in", cert, "-noout", "-text");
      assert.match(
        text,
        /Authority Key Identifier:\s*\n\s*01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14/,
      );
      assert.match(text, /Subject: CN\s*=\s*host-1/);
    });
});
