import { writeFile } from "node:fs/promises";
import { stringify } from "yaml";

export type Credentials = { kind: "cert"; certData: string; keyData: string } | { kind: "token"; token: string };

/** A kubeconfig with one cluster, one user and one current context. */
export function kubeconfigYaml(server: string, caData: string, user: string, creds: Credentials): string {
  const userEntry =
    creds.kind === "cert"
      ? { "client-certificate-data": creds.certData, "client-key-data": creds.keyData }
      : { token: creds.token };
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "kubexen", cluster: { server, "certificate-authority-data": caData } }],
    users: [{ name: user, user: userEntry }],
    contexts: [{ name: user, context: { cluster: "kubexen", user } }],
    "current-context": user,
  });
}

export async function writeKubeconfig(
  path: string,
  server: string,
  caData: string,
  user: string,
  creds: Credentials,
): Promise<string> {
  await writeFile(path, kubeconfigYaml(server, caData, user, creds), { mode: 0o600 });
  return path;
}
