import { pino } from "pino";

/** Structured logs for the test beds; level from KUBEXEN_LOG_LEVEL (default info). */
export const logger = pino(
  { name: "kubexen-e2e", level: process.env.KUBEXEN_LOG_LEVEL ?? "info" },
  pino.destination(2),
);
