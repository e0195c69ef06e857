// xenstored's domain watches: `@introduceDomain` fires when a domain is
// introduced to xenstore (built, restored, received), `@releaseDomain` when one
// shuts down, crashes or dies. libxl watches `@releaseDomain` to learn of a
// domain's death; the driver uses both to look at its domains when something
// changed rather than polling `xl list` all the time. xenstore-watch (from
// xenstore-utils, which xen-utils depends on) fires each watch once when it
// registers: that first line tells the watch works.
import { type ChildProcess, spawn } from "node:child_process";

export interface DomainWatch {
  stop(): void;
}

/**
 * Runs one `xenstore-watch` per special path; `onRing` on every line each prints, `onDown` once
 * when either cannot start or exits (the other is then stopped too).
 */
export function watchDomains(bin: string, onRing: () => void, onDown: (why: string) => void): DomainWatch {
  const children: ChildProcess[] = [];
  let down = false;
  const stop = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
  };
  const fail = (why: string) => {
    if (down) return;
    down = true;
    stop();
    onDown(why);
  };
  for (const path of ["@introduceDomain", "@releaseDomain"]) {
    const child = spawn(bin, [path], { stdio: ["ignore", "pipe", "ignore"] });
    children.push(child);
    child.on("error", (err) => fail(`${bin} ${path}: ${err.message}`));
    child.on("exit", (code, signal) => fail(`${bin} ${path} exited (${signal ?? `code ${code}`})`));
    // Each line is one firing; a chunk may hold several, and one is enough to look.
    child.stdout?.on("data", () => {
      if (!down) onRing();
    });
    // Neither the watch nor its pipe keeps the agent's process alive.
    child.unref();
    (child.stdout as { unref?: () => void } | null)?.unref?.();
  }
  return {
    stop() {
      down = true;
      stop();
    },
  };
}
