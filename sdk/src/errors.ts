// Errors the SDK and its users throw, with the context to act on them.

/** A non-2xx answer from the API server, with its Status fields. */
export class ApiError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly details: unknown;
  constructor(method: string, path: string, status: number, reason: string, message: string, details?: unknown) {
    super(`${method} ${path}: ${status} ${reason}: ${message}`);
    this.name = "ApiError";
    this.status = status;
    this.reason = reason;
    this.details = details;
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof ApiError && e.status === 404;
export const isConflict = (e: unknown): boolean => e instanceof ApiError && e.status === 409;
export const isGone = (e: unknown): boolean => e instanceof ApiError && e.status === 410;
export const isAlreadyExists = (e: unknown): boolean =>
  e instanceof ApiError && e.status === 409 && e.reason === "AlreadyExists";

/** A handler failed for a reason that may pass: retry after `delayMs` (default: the queue's backoff). */
export class TemporaryError extends Error {
  readonly delayMs: number | undefined;
  constructor(message: string, delayMs?: number) {
    super(message);
    this.name = "TemporaryError";
    this.delayMs = delayMs;
  }
}

/** A handler failed for a reason retrying cannot fix: report it (Stalled, an event) and stop retrying. */
export class PermanentError extends Error {
  readonly reason: string;
  constructor(message: string, reason = "PermanentError") {
    super(message);
    this.name = "PermanentError";
    this.reason = reason;
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
