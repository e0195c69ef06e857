import { type Logger, pino } from "pino";

export type { Logger };

/** A structured logger to stderr (or `destination`, one JSON line per write); level from LOG_LEVEL (default info). */
export function createLogger(
  name: string,
  level = process.env.LOG_LEVEL ?? "info",
  destination: { write(line: string): void } = pino.destination(2),
): Logger {
  return pino({ name, level, base: { component: name } }, destination);
}

let root: Logger | undefined;
export function defaultLogger(): Logger {
  root ??= createLogger("opkit");
  return root;
}
