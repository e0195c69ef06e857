// Typed hypervisor failures: the code says what the node agent can do about it.

export type HypervisorErrorCode =
  | "NotFound"
  | "AlreadyExists"
  | "InsufficientMemory"
  | "InvalidConfig"
  | "MissingFile"
  | "Unsupported"
  | "NotMigratable"
  | "Unavailable"
  | "Timeout"
  | "MigrationFailed"
  | "Failed";

export class HypervisorError extends Error {
  readonly code: HypervisorErrorCode;
  readonly command: string | undefined;
  readonly stderr: string | undefined;
  readonly exitCode: number | undefined;
  constructor(
    code: HypervisorErrorCode,
    message: string,
    ctx: { command?: string; stderr?: string; exitCode?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: ctx.cause });
    this.name = "HypervisorError";
    this.code = code;
    this.command = ctx.command;
    this.stderr = ctx.stderr;
    this.exitCode = ctx.exitCode;
  }
}

/** A migration that did not complete. `ambiguous`: the peer may own the domain (see Hypervisor.migrateSend). */
export class MigrationError extends HypervisorError {
  readonly phase: string;
  readonly ambiguous: boolean;
  constructor(phase: string, message: string, ambiguous = false, cause?: unknown) {
    super("MigrationFailed", `migration failed during ${phase}: ${message}`, { cause });
    this.phase = phase;
    this.ambiguous = ambiguous;
  }
}
