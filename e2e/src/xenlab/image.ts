// The lab's disk image and boot files, built by e2e/xenlab/image.sh (cached by
// a hash of its inputs, so only the first run after a change pays for it).
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export interface LabImage {
  dir: string;
  xenElf: string;
  dom0Img: string;
  vmlinuz: string;
  initrd: string;
}

const script = fileURLToPath(new URL("../../xenlab/image.sh", import.meta.url));

/** Builds the image if its inputs changed; the build's progress goes to `logFile`. */
export function buildLabImage(logFile: string): Promise<LabImage> {
  return new Promise((resolve, reject) => {
    const log = createWriteStream(logFile, { flags: "a" });
    const child = spawn("bash", [script], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.pipe(log);
    child.on("error", reject);
    child.on("exit", (code) => {
      log.end();
      const dir = out.trim().split("\n").pop() ?? "";
      if (code !== 0 || !dir)
        return reject(new Error(`the lab image build failed (exit ${code}); its output is in ${logFile}`));
      resolve({
        dir,
        xenElf: join(dir, "xen.elf"),
        dom0Img: join(dir, "dom0.img"),
        vmlinuz: join(dir, "vmlinuz"),
        initrd: join(dir, "initrd.img"),
      });
    });
  });
}
