// Child processes that cannot outlive the test, demo or benchmark that
// started them: each is exec'd through `setpriv --pdeathsig KILL`, so the
// kernel kills it when this Node process dies, however it dies; a normal
// exit also kills what is left.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";

export interface SupervisedOptions {
  /** Where stdout and stderr go (appended). */
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Also called with each chunk of output as it arrives. */
  onOutput?: (chunk: Buffer) => void;
}

export interface Supervised {
  readonly name: string;
  readonly pid: number;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  readonly running: boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL at once, as a crash would. */
  kill(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
const setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p));

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

export function startSupervised(name: string, command: string, args: string[], opts: SupervisedOptions): Supervised {
  installExitHook();
  const log = createWriteStream(opts.logFile, { flags: "a" });
  const [cmd, argv] = setpriv ? [setpriv, ["--pdeathsig", "KILL", "--", command, ...args]] : [command, args];
  const child = spawn(cmd, argv, {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  const pid = child.pid;
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  if (opts.onOutput) {
    child.stdout?.on("data", opts.onOutput);
    child.stderr?.on("data", opts.onOutput);
  }
  live.add(child);
  let running = true;
  const exited = new Promise<number | string>((resolve) => {
    child.on("exit", (code, signal) => {
      running = false;
      live.delete(child);
      resolve(code ?? signal ?? "unknown");
    });
    child.on("error", (err) => {
      running = false;
      live.delete(child);
      log.write(`${name}: spawn error: ${err.message}\n`);
      resolve("spawn-error");
    });
  });
  void exited.then(() => setTimeout(() => log.end(), 50));

  return {
    name,
    pid,
    exited,
    get running() {
      return running;
    },
    async stop(graceMs = 5000) {
      if (!running) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      if (!running) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** True while a process with this pid exists (and is not a zombie). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return true;
}
