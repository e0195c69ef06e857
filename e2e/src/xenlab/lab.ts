// A lab of real Xen hosts under QEMU, each running the node agent in its dom0
// against a test's control plane: the hosts reach the API server through
// QEMU's user networking (10.0.2.2 is the outer machine's loopback) and each
// other through point-to-point links (UDP on loopback), where migration
// streams flow. Console logs stay in the lab's directory.
import { spawn } from "node:child_process";
import { accessSync, constants, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { ControlPlane } from "../controlplane/controlplane.ts";
import { issueHostCert, makeCa } from "../controlplane/pki.ts";
import { freePort } from "../controlplane/ports.ts";
import { until } from "../wait.ts";
import { LabHost } from "./host.ts";
import { buildLabImage, type LabImage } from "./image.ts";

export interface XenLabOptions {
  /** Number of hosts (2 by default). */
  hosts?: number;
  /** Where consoles, logs and disks go. */
  dir: string;
  /** Extra flags for every agent (fencing timeouts, heartbeat). */
  agentArgs?: string[];
  /** Called with progress lines (image build, boots). */
  progress?: (msg: string) => void;
}

export const labHostName = (i: number) => `xen-${String.fromCharCode(97 + i)}`;

export class XenLab {
  readonly hosts: LabHost[];
  readonly image: LabImage;
  readonly dir: string;
  readonly accel: "kvm" | "tcg";
  /** The hosts' migration CA (PEM), for the operator, which alone signs with its key. */
  readonly migrationCa: { cert: string; key: string };
  private constructor(
    hosts: LabHost[],
    image: LabImage,
    dir: string,
    accel: "kvm" | "tcg",
    migrationCa: { cert: string; key: string },
  ) {
    this.migrationCa = migrationCa;
    this.hosts = hosts;
    this.image = image;
    this.dir = dir;
    this.accel = accel;
  }

  host(name: string): LabHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no lab host ${name} (have ${this.hosts.map((x) => x.name).join(", ")})`);
    return h;
  }

  /** Builds the image if needed, boots the hosts in parallel and waits until every agent has registered. */
  static async start(cp: ControlPlane, o: XenLabOptions): Promise<XenLab> {
    const n = o.hosts ?? 2;
    const say = o.progress ?? (() => {});
    mkdirSync(o.dir, { recursive: true });
    const t0 = Date.now();
    const image = await buildLabImage(join(o.dir, "image.log"));
    say(`image ready in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${image.dir}`);
    const accel = await probeKvm(image, o.dir);
    say(`accelerator: ${accel}`);
    const ca = await makeCa(o.dir, "migration-ca");
    const kubeconfig = readFileSync(cp.kubeconfigPath, "utf8").replaceAll(
      /https:\/\/(127\.0\.0\.1|localhost):/g,
      "https://10.0.2.2:",
    );
    const addr = (i: number) => `192.168.77.${10 + i}`;
    // One UDP port per end of each link.
    const linkPorts = new Map<string, number>();
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) linkPorts.set(`${i}>${j}`, await freePort());
    const hosts: LabHost[] = [];
    for (let i = 0; i < n; i++) {
      const name = labHostName(i);
      const dir = join(o.dir, name);
      mkdirSync(dir, { recursive: true });
      const certs = await issueHostCert(o.dir, ca, name);
      const peers = [...Array(n).keys()].filter((j) => j !== i);
      const env = [
        `HOST=${name}`,
        `ADDR=${addr(i)}`,
        `LINKS="${peers.map((j, k) => `eth${k + 1}:${addr(j)}`).join(" ")}"`,
        `AGENT_ARGS="${(o.agentArgs ?? []).join(" ")}"`,
      ].join("\n");
      hosts.push(
        new LabHost({
          name,
          index: i,
          addr: addr(i),
          dir,
          image,
          accel,
          cmdPort: await freePort(),
          links: peers.map((j) => ({
            localPort: linkPorts.get(`${i}>${j}`) ?? 0,
            remotePort: linkPorts.get(`${j}>${i}`) ?? 0,
          })),
          config: {
            "host.env": `${env}\n`,
            kubeconfig,
            "tls.crt": readFileSync(certs.certFile, "utf8"),
            "tls.key": readFileSync(certs.keyFile, "utf8"),
            // The CA's certificate only: its key stays with the operator (migrationCa).
            "ca.crt": readFileSync(ca.certFile, "utf8"),
          },
        }),
      );
    }
    const lab = new XenLab(hosts, image, o.dir, accel, {
      cert: readFileSync(ca.certFile, "utf8"),
      key: readFileSync(ca.keyFile, "utf8"),
    });
    const t1 = Date.now();
    for (const h of hosts) h.boot();
    try {
      await Promise.all(
        hosts.map(async (h) => {
          await h.waitConsole(new RegExp(`kubexen-lab: host ${h.name} up`), 10 * 60_000);
          say(`${h.name}: dom0 up after ${((Date.now() - t1) / 1000).toFixed(0)} s`);
          await lab.waitReady(cp, h.name, 10 * 60_000);
          say(`${h.name}: agent Ready after ${((Date.now() - t1) / 1000).toFixed(0)} s`);
        }),
      );
    } catch (err) {
      await lab.stop();
      throw err;
    }
    return lab;
  }

  /** Waits for the host's XenHost to be Ready. */
  async waitReady(cp: ControlPlane, name: string, timeoutMs: number, since = 0): Promise<void> {
    await until(
      `XenHost ${name} Ready`,
      async () => {
        const r = await cp.kubectl(["get", "xenhost", name, "-o", "json"]);
        if (r.code !== 0) return false;
        const c = (JSON.parse(r.stdout).status?.conditions ?? []) as Array<{
          type: string;
          status: string;
          lastTransitionTime?: string;
        }>;
        const ready = c.find((x) => x.type === "Ready");
        return ready?.status === "True" && Date.parse(ready.lastTransitionTime ?? "0") >= since - 1000;
      },
      timeoutMs,
      2000,
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.hosts.map((h) => h.stop()));
  }
}

/**
 * KVM only when it really works: here /dev/kvm may exist and still hang a guest. The probe boots
 * the dom0 kernel alone under KVM and waits a few seconds for its first console line.
 */
async function probeKvm(image: LabImage, dir: string): Promise<"kvm" | "tcg"> {
  if (process.env.KUBEXEN_LAB_ACCEL === "tcg") return "tcg";
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
  } catch {
    return "tcg";
  }
  return new Promise((resolve) => {
    const child = spawn(
      "qemu-system-x86_64",
      [
        "-accel",
        "kvm",
        "-cpu",
        "host",
        "-m",
        "256",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        "-kernel",
        image.vmlinuz,
        "-append",
        "console=ttyS0 panic=-1 earlyprintk=ttyS0",
      ],
      { stdio: ["ignore", "pipe", "pipe"], cwd: dir },
    );
    let out = "";
    const done = (accel: "kvm" | "tcg") => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      resolve(accel);
    };
    const timer = setTimeout(() => done("tcg"), 8000);
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("Linux version")) done("kvm");
    });
    child.on("exit", () => done("tcg"));
    child.on("error", () => done("tcg"));
  });
}
