// Runs xl with a timeout, keeps its stderr, and maps failures to typed
// errors. xl exits with the negated libxl error code (so 253 is ERROR_FAIL,
// -3), and some failures only show in its messages.
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HypervisorError, type HypervisorErrorCode } from "../errors.ts";
import { type DomainScope, scopedCommand } from "./scope.ts";

export interface XlResult {
  stdout: string;
  stderr: string;
}

export interface XlRunOptions {
  timeoutMs?: number;
  /** Run in this transient systemd scope (scope.ts): for commands whose processes must outlive the agent. */
  scope?: DomainScope;
}

export type XlRunner = (args: string[], opts?: XlRunOptions) => Promise<XlResult>;

/** libxl error numbers (libxl_types.idl), negated as xl's exit code. */
const LIBXL_ERRORS: Record<number, [string, HypervisorErrorCode]> = {
  3: ["ERROR_FAIL", "Failed"],
  5: ["ERROR_NOMEM", "InsufficientMemory"],
  6: ["ERROR_INVAL", "InvalidConfig"],
  8: ["ERROR_GUEST_TIMEDOUT", "Timeout"],
  9: ["ERROR_TIMEDOUT", "Timeout"],
  11: ["ERROR_NOT_READY", "Unavailable"],
  15: ["ERROR_LOCK_FAIL", "Unavailable"],
  17: ["ERROR_DEVICE_EXISTS", "AlreadyExists"],
  21: ["ERROR_DOMAIN_NOTFOUND", "NotFound"],
  23: ["ERROR_NOTFOUND", "NotFound"],
  24: ["ERROR_DOMAIN_DESTROYED", "NotFound"],
};

// Order matters: xl prints follow-on errors after the cause (a refused duplicate name is followed
// by a failed xenstore read of the half-made domain), so the specific causes come first.
const PATTERNS: Array<[RegExp, HypervisorErrorCode, string?]> = [
  // The domain runs on, untouched: its guest has not answered the suspend request (still booting,
  // or no PV drivers). Worth asking again, unlike a broken config.
  [
    /didn't acknowledge suspend|guest did not acknowledge/i,
    "Timeout",
    "the guest did not answer the suspend request (not booted yet, or without Xen PV drivers); it keeps running",
  ],
  [/already exists|domain with name .* exists/i, "AlreadyExists"],
  // The domain builder's "Out of memory" is followed by a bogus errno ("No such file or directory").
  [
    /segment \S+ too large/i,
    "InvalidConfig",
    "the domain's memory is too small to hold its kernel and ramdisk: give it more memory",
  ],
  [/not a valid domain|invalid domain identifier|domain .* does not exist|no such domain/i, "NotFound"],
  [/not enough memory|failed to free memory|insufficient memory|cannot allocate memory|ENOMEM/i, "InsufficientMemory"],
  [/failed to enable logdirty|log-dirty|logdirty/i, "NotMigratable"],
  [/memory_dynamic_max must be less than or equal to memory_static_max/i, "InvalidConfig"],
  [
    /can't find hypervisor information|cannot connect to xenstored|xs_open|failed to open .*\/proc\/xen/i,
    "Unavailable",
  ],
  [/no such file or directory|failed to stat|unable to find|cannot open .*kernel|could not find/i, "MissingFile"],
  [/parse error|config parsing error|invalid|unknown .* option/i, "InvalidConfig"],
];

export function classify(exitCode: number | null, stderr: string): HypervisorErrorCode {
  return explain(exitCode, stderr).code;
}

function explain(exitCode: number | null, stderr: string): { code: HypervisorErrorCode; hint?: string } {
  for (const [re, code, hint] of PATTERNS) if (re.test(stderr)) return { code, hint };
  const libxl = exitCode !== null && exitCode > 128 ? LIBXL_ERRORS[256 - exitCode] : undefined;
  return { code: libxl?.[1] ?? "Failed" };
}

/**
 * The part of xl's stderr that says why: the first error lines (the cause; what follows is
 * cleanup failing in turn), or the last lines when none is marked as an error.
 */
export function stderrSummary(stderr: string): string {
  const lines = stderr
    .trim()
    .split("\n")
    .filter((l) => l.trim() && !/^Parsing config from/.test(l));
  const errors = lines.filter((l) => /error|panic|fatal|failed|cannot|unable/i.test(l));
  return (errors.length > 0 ? errors.slice(0, 2) : lines.slice(-3)).join(" | ");
}

/** The real runner: spawns `xl` (or `bin`), killing it after timeoutMs. */
export function xlRunner(bin = "xl", defaultTimeoutMs = 60_000): XlRunner {
  return (args, opts = {}) =>
    new Promise((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? defaultTimeoutMs;
      const cmd = `${bin} ${args.join(" ")}`;
      const run = scopedCommand(bin, args, opts.scope);
      // A scoped command writes to files, not pipes: if the agent dies while it runs, a pipe's
      // reader is gone and xl's next message would kill it (SIGPIPE) halfway through building a domain.
      const files = opts.scope ? outputFiles(opts.scope.unit) : undefined;
      let child: ReturnType<typeof spawn>;
      try {
        // No stdin: xl may exit before reading it, and a write to it would fail with EPIPE.
        child = spawn(run.command, run.args, {
          stdio: ["ignore", files?.out.fd ?? "pipe", files?.err.fd ?? "pipe"],
        });
      } finally {
        files?.close();
      }
      let stdout = "";
      let stderr = "";
      let timedOut = false;
      child.stdout?.setEncoding("utf8").on("data", (c: string) => {
        stdout += c;
      });
      child.stderr?.setEncoding("utf8").on("data", (c: string) => {
        stderr += c;
      });
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill("SIGKILL");
      }, timeoutMs);
      child.on("error", (err) => {
        clearTimeout(timer);
        files?.read();
        reject(new HypervisorError("Unavailable", `${cmd}: ${err.message}`, { command: cmd, cause: err }));
      });
      child.on("close", (code) => {
        clearTimeout(timer);
        if (files) ({ stdout, stderr } = files.read());
        if (timedOut)
          return reject(
            new HypervisorError("Timeout", `${cmd}: no answer within ${timeoutMs} ms`, { command: cmd, stderr }),
          );
        if (code === 0) return resolve({ stdout, stderr });
        const { code: kind, hint } = explain(code, stderr);
        const libxl = code !== null && code > 128 ? LIBXL_ERRORS[256 - code]?.[0] : undefined;
        const detail = stderrSummary(stderr) || `exit ${code}`;
        reject(
          new HypervisorError(kind, `${cmd} failed${libxl ? ` (${libxl})` : ""}: ${hint ? `${hint}; ` : ""}${detail}`, {
            command: cmd,
            stderr,
            exitCode: code ?? undefined,
          }),
        );
      });
    });
}

/** Files for a scoped command's stdout and stderr; `read` returns their text and removes them. */
function outputFiles(unit: string) {
  const base = join(tmpdir(), `${unit}.${process.pid}`);
  const out = { path: `${base}.out`, fd: openSync(`${base}.out`, "w", 0o600) };
  const err = { path: `${base}.err`, fd: openSync(`${base}.err`, "w", 0o600) };
  return {
    out,
    err,
    /** The child holds its own copies once spawned. */
    close() {
      closeSync(out.fd);
      closeSync(err.fd);
    },
    read(): XlResult {
      const text = (p: string) => {
        try {
          return readFileSync(p, "utf8");
        } catch {
          return "";
        } finally {
          rmSync(p, { force: true });
        }
      };
      return { stdout: text(out.path), stderr: text(err.path) };
    },
  };
}
