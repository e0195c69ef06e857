// Certificates for a throw-away control plane, made with the openssl CLI
// (Node can parse X.509 but not issue it). Keys stay in the control plane's
// temporary directory and die with it.
import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface KeyPair {
  certFile: string;
  keyFile: string;
}

export interface Pki {
  ca: KeyPair;
  server: KeyPair;
  admin: KeyPair;
  /** Service-account token signing key pair (PEM files). */
  serviceAccount: { publicKeyFile: string; privateKeyFile: string };
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run("openssl", args, { cwd });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** Issues a certificate signed by `ca`; `subject` is an openssl -subj string. */
export async function issue(dir: string, ca: KeyPair, name: string, subject: string, ext: string): Promise<KeyPair> {
  const keyFile = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const certFile = join(dir, `${name}.crt`);
  const extFile = join(dir, `${name}.ext`);
  await writeFile(extFile, ext);
  await openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", keyFile], dir);
  await openssl(["req", "-new", "-key", keyFile, "-subj", subject, "-out", csr], dir);
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      ca.certFile,
      "-CAkey",
      ca.keyFile,
      "-CAcreateserial",
      "-days",
      "30",
      "-sha256",
      "-extfile",
      extFile,
      "-out",
      certFile,
    ],
    dir,
  );
  return { certFile, keyFile };
}

/** A self-signed CA named `name` in `dir` (files <name>.crt and <name>.key). */
export async function makeCa(dir: string, name = "ca"): Promise<KeyPair> {
  const ca: KeyPair = { certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
  await openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", ca.keyFile], dir);
  await openssl(
    [
      "req",
      "-x509",
      "-new",
      "-key",
      ca.keyFile,
      "-subj",
      `/CN=kubexen-${name}`,
      "-days",
      "30",
      "-sha256",
      "-out",
      ca.certFile,
    ],
    dir,
  );
  return ca;
}

/** A certificate for a Xen host's agent: CN is the host, usable as TLS client and server. */
export function issueHostCert(dir: string, ca: KeyPair, host: string): Promise<KeyPair> {
  return issue(
    dir,
    ca,
    `host-${host}`,
    `/CN=${host}`,
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth,clientAuth",
      `subjectAltName=DNS:${host},IP:127.0.0.1`,
    ].join("\n"),
  );
}

/** Makes a CA, a serving certificate for 127.0.0.1/localhost, an admin client certificate and SA keys. */
export async function makePki(dir: string): Promise<Pki> {
  const ca = await makeCa(dir);
  const server = await issue(
    dir,
    ca,
    "apiserver",
    "/CN=kube-apiserver",
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,IP:10.0.2.2,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc",
    ].join("\n"),
  );
  // system:masters bypasses RBAC: the admin identity tests set the stage with.
  const admin = await issue(
    dir,
    ca,
    "admin",
    "/O=system:masters/CN=kubexen-admin",
    ["basicConstraints=CA:FALSE", "keyUsage=digitalSignature,keyEncipherment", "extendedKeyUsage=clientAuth"].join(
      "\n",
    ),
  );
  const sa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const publicKeyFile = join(dir, "sa.pub");
  const privateKeyFile = join(dir, "sa.key");
  await writeFile(publicKeyFile, sa.publicKey.export({ type: "spki", format: "pem" }));
  await writeFile(privateKeyFile, sa.privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  return { ca, server, admin, serviceAccount: { publicKeyFile, privateKeyFile } };
}

export async function readBase64(file: string): Promise<string> {
  return (await readFile(file)).toString("base64");
}
