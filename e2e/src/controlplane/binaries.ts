import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const buildScript = fileURLToPath(new URL("../../controlplane/build.sh", import.meta.url));

export interface Binaries {
  dir: string;
  kubeApiserver: string;
  etcd: string;
  kubectl: string;
  helm: string;
}

let cached: Promise<Binaries> | undefined;

/** The control plane's binaries, built from the Go modules on first use on this machine. */
export function binaries(): Promise<Binaries> {
  cached ??= (async () => {
    const { stdout } = await run("bash", [buildScript], { maxBuffer: 64 << 20, timeout: 3_600_000 });
    const dir = stdout.trim().split("\n").pop() ?? "";
    if (!dir) throw new Error(`${buildScript} printed no binary directory`);
    return {
      dir,
      kubeApiserver: join(dir, "kube-apiserver"),
      etcd: join(dir, "etcd"),
      kubectl: join(dir, "kubectl"),
      helm: join(dir, "helm"),
    };
  })();
  return cached;
}
