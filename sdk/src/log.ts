import { type Logger, pino } from "pino";

export type { Logger };

/** A structured logger; level from LOG_LEVEL (default info). */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? "info"): Logger {
  return pino({ name, level, base: { component: name } }, pino.destination(2));
}

let root: Logger | undefined;
export function defaultLogger(): Logger {
  root ??= createLogger("kubexen-sdk");
  return root;
}
