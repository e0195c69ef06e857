// One real Xen host under QEMU: Xen 4.17 and a Debian dom0 running the node
// agent (see e2e/xenlab/lab-init.sh). The harness reads the host's serial
// console (Xen's, dom0's, the agent's and every guest's, each line stamped with
// the outer machine's clock), runs commands in dom0 through a forwarded port,
// and cuts or restores the host's network through QEMU's monitor.
import { execFileSync } from "node:child_process";
import { appendFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { type Supervised, startSupervised } from "../supervised.ts";
import type { LabImage } from "./image.ts";

export interface ConsoleLine {
  /** When the harness read it (ms since the epoch). */
  t: number;
  text: string;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface LabHostOptions {
  name: string;
  index: number;
  /** Address on the links between hosts (migration streams). */
  addr: string;
  dir: string;
  image: LabImage;
  /** host.env and the credentials, written to the host's config disk. */
  config: Record<string, string>;
  /** One per peer, in the order of host.env's LINKS: this side's and the other side's UDP port on loopback. */
  links: Array<{ localPort: number; remotePort: number }>;
  cmdPort: number;
  memoryMiB?: number;
  dom0MemoryMiB?: number;
  cpus?: number;
  accel?: "kvm" | "tcg";
}

export class LabHost {
  readonly name: string;
  readonly addr: string;
  readonly dir: string;
  readonly console: ConsoleLine[] = [];
  readonly consoleFile: string;
  /** This host's ends of its links: UDP ports on loopback, one per peer (where a capture sees the streams). */
  readonly linkPorts: number[];
  private readonly o: LabHostOptions;
  private qemu: Supervised | undefined;
  private partial = "";
  private waiters: Array<() => void> = [];

  constructor(o: LabHostOptions) {
    this.o = o;
    this.name = o.name;
    this.addr = o.addr;
    this.dir = o.dir;
    this.consoleFile = join(o.dir, "console.log");
    this.linkPorts = o.links.map((l) => l.localPort);
  }

  get running(): boolean {
    return this.qemu?.running ?? false;
  }
  get exited(): Promise<number | string> {
    if (!this.qemu) throw new Error(`${this.name}: not booted`);
    return this.qemu.exited;
  }

  /** Writes the config disk and the host's copy-on-write disk, then starts QEMU. */
  boot(): void {
    const o = this.o;
    const conf = join(o.dir, "config");
    execFileSync("mkdir", ["-p", conf]);
    for (const [file, text] of Object.entries(o.config)) writeFileSync(join(conf, file), text, { mode: 0o600 });
    execFileSync("mkfs.ext4", ["-q", "-F", "-L", "kubexen", "-d", conf, join(o.dir, "config.img"), "16M"]);
    execFileSync("qemu-img", [
      "create",
      "-q",
      "-f",
      "qcow2",
      "-b",
      o.image.dom0Img,
      "-F",
      "raw",
      join(o.dir, "dom0.qcow2"),
    ]);
    const mac = (n: number) =>
      `52:54:00:4b:${o.index.toString(16).padStart(2, "0")}:${n.toString(16).padStart(2, "0")}`;
    const args = [
      "-accel",
      o.accel ?? "tcg",
      "-cpu",
      // Under TCG, an AMD-V CPU with nested paging: HAP for pvh and hvm guests and their migration.
      // (Adding AES-NI and SSE4 made the TLS migration streams slower here, not faster.)
      o.accel === "kvm" ? "host" : "qemu64,+svm,+npt",
      "-smp",
      // One CPU: with two, nested guests die now and then under TCG (e2e/xenlab/README.md).
      String(o.cpus ?? 1),
      "-m",
      String(o.memoryMiB ?? 2048),
      "-display",
      "none",
      "-serial",
      "stdio",
      "-no-reboot",
      "-monitor",
      `unix:${join(o.dir, "monitor.sock")},server=on,wait=off`,
      "-kernel",
      o.image.xenElf,
      // No `noreboot`: a watchdog reset reboots, and -no-reboot turns that into QEMU exiting.
      "-append",
      `dom0_mem=${o.dom0MemoryMiB ?? 1024}M,max:${o.dom0MemoryMiB ?? 1024}M console=com1`,
      "-initrd",
      `${o.image.vmlinuz} root=/dev/vda rw console=hvc0 net.ifnames=0 init=/sbin/kubexen-lab-init,${o.image.initrd}`,
      "-drive",
      `file=${join(o.dir, "dom0.qcow2")},if=virtio,format=qcow2`,
      "-drive",
      `file=${join(o.dir, "config.img")},if=virtio,format=raw,readonly=on`,
      "-netdev",
      `user,id=cp,net=10.0.2.0/24,hostfwd=tcp:127.0.0.1:${o.cmdPort}-:7000`,
      "-device",
      `virtio-net-pci,netdev=cp,mac=${mac(0)}`,
    ];
    o.links.forEach((l, i) => {
      args.push(
        "-netdev",
        `socket,id=link${i},udp=127.0.0.1:${l.remotePort},localaddr=127.0.0.1:${l.localPort}`,
        "-device",
        `virtio-net-pci,netdev=link${i},mac=${mac(i + 1)}`,
      );
    });
    this.qemu = startSupervised(`qemu-${o.name}`, "qemu-system-x86_64", args, {
      logFile: join(o.dir, "qemu.log"),
      onOutput: (chunk) => this.onOutput(chunk),
    });
  }

  private onOutput(chunk: Buffer): void {
    const t = Date.now();
    const text = this.partial + chunk.toString("utf8").replace(/\r/g, "");
    const lines = text.split("\n");
    this.partial = lines.pop() ?? "";
    for (const line of lines) {
      this.console.push({ t, text: line });
      appendFileSync(this.consoleFile, `${new Date(t).toISOString()} ${line}\n`);
    }
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The first console line (from index `from`) matching `re`. */
  async waitConsole(re: RegExp, timeoutMs: number, from = 0): Promise<ConsoleLine> {
    const end = Date.now() + timeoutMs;
    let i = from;
    for (;;) {
      for (; i < this.console.length; i++) {
        const line = this.console[i];
        if (line && re.test(line.text)) return line;
      }
      if (!this.running && this.qemu) throw new Error(`${this.name}: QEMU exited while waiting for ${re}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`${this.name}: no console line matching ${re} within ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(timer);
          r();
        });
      });
    }
  }

  /**
   * A console line of Xen domain `xlName`'s guest matching `text` (a regular expression source).
   * xenconsoled names the log after the domain's name when its console connects: a domain that
   * arrived by migration logs as `<name>--incoming`.
   */
  static guestLine(xlName: string, text: string): RegExp {
    return new RegExp(`^\\[guest-${xlName.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(--incoming)?\\.log\\] ${text}`);
  }

  /** Counter lines a guest printed ("kubexen-guest alive N") on this host. */
  guestCounter(xlName: string): Array<{ t: number; n: number }> {
    const re = LabHost.guestLine(xlName, "kubexen-guest alive (\\d+)$");
    const out: Array<{ t: number; n: number }> = [];
    for (const l of this.console) {
      const m = re.exec(l.text);
      if (m) out.push({ t: l.t, n: Number(m[2]) });
    }
    return out;
  }

  /** Runs a shell command in dom0. */
  async exec(cmd: string, timeoutMs = 120_000): Promise<ExecResult> {
    const script = `{\n${cmd}\n} >/tmp/lab.o.$$ 2>/tmp/lab.e.$$; rc=$?; cat /tmp/lab.o.$$; printf '\\n=====STDERR\\n'; cat /tmp/lab.e.$$; printf '\\n=====RC %d\\n' $rc; rm -f /tmp/lab.o.$$ /tmp/lab.e.$$\n`;
    const end = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < end) {
      try {
        const out = await this.roundTrip(script, end - Date.now());
        const rc = /\n=====RC (\d+)\n?$/.exec(out);
        const split = out.lastIndexOf("\n=====STDERR\n");
        if (!rc || split < 0) throw new Error(`incomplete answer: ${out.slice(-200)}`);
        return {
          stdout: out.slice(0, split),
          stderr: out.slice(split + "\n=====STDERR\n".length, rc.index),
          code: Number(rc[1]),
        };
      } catch (err) {
        last = err;
        if (!this.running) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    throw new Error(`${this.name}: could not run \`${cmd}\` in dom0: ${last}`);
  }

  /**
   * Runs a long shell command in dom0 detached from the command port's connection, which may
   * break in minutes-long waits (the first exec would then be sent again, a second run beside the
   * first): started once, then polled. Past the timeout it is killed and its output so far thrown.
   */
  async execDetached(cmd: string, timeoutMs: number, pollMs = 15_000): Promise<ExecResult> {
    const job = `/tmp/lab-job.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    const b64 = Buffer.from(cmd).toString("base64");
    await this.execOk(
      `echo ${b64} | base64 -d > ${job}.sh && setsid sh -c 'sh ${job}.sh > ${job}.out 2> ${job}.err; echo $? > ${job}.rc.tmp; mv ${job}.rc.tmp ${job}.rc' < /dev/null > /dev/null 2>&1 & echo $! > ${job}.pid`,
    );
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(0, end - Date.now()))));
      const rc = await this.exec(`cat ${job}.rc 2>/dev/null`, 60_000).catch(() => undefined);
      if (rc?.stdout.trim()) {
        const out = await this.exec(`cat ${job}.out`, 120_000);
        const err = await this.exec(`cat ${job}.err`, 120_000);
        return { stdout: out.stdout, stderr: err.stdout, code: Number(rc.stdout.trim()) };
      }
    }
    const sofar = await this.exec(
      `kill -TERM -$(cat ${job}.pid) 2>/dev/null; sleep 2; kill -KILL -$(cat ${job}.pid) 2>/dev/null; tail -c 20000 ${job}.out; tail -c 5000 ${job}.err`,
      120_000,
    ).catch((e: unknown) => ({ stdout: `(its output could not be read: ${e})`, stderr: "", code: -1 }));
    throw new Error(`${this.name}: \`${cmd}\` did not finish in ${timeoutMs} ms; its output so far:\n${sofar.stdout}`);
  }

  /** Runs a shell command in dom0 and returns its stdout; throws with its stderr when it fails. */
  async execOk(cmd: string, timeoutMs?: number): Promise<string> {
    const r = await this.exec(cmd, timeoutMs);
    if (r.code !== 0) throw new Error(`${this.name}: \`${cmd}\` exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  private roundTrip(script: string, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = connect(this.o.cmdPort, "127.0.0.1");
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      s.on("connect", () => s.end(script));
      s.on("data", (d: Buffer) => chunks.push(d));
      s.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      s.on("close", () => {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks).toString("utf8"));
      });
    });
  }

  /** A command on QEMU's human monitor (for example `set_link cp off`). */
  monitor(command: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = connect(join(this.o.dir, "monitor.sock"));
      let out = "";
      let sent = false;
      // The monitor greets with a "(qemu)" prompt and prompts again once the command is done.
      s.on("data", (d: Buffer) => {
        out += d.toString();
        if (!sent && out.includes("(qemu)")) {
          sent = true;
          s.write(`${command}\n`);
        } else if (sent && out.split("(qemu)").length > 2) s.end();
      });
      s.on("error", reject);
      s.on("close", () => resolve(out));
    });
  }

  /** Cuts (or restores) the host's link to the control plane, as a failed switch port would. */
  async setControlPlaneLink(up: boolean): Promise<void> {
    await this.monitor(`set_link cp ${up ? "on" : "off"}`);
  }

  async stop(): Promise<void> {
    await this.qemu?.kill();
  }
}
