export { autoConvergeThrottle, throttleCap } from "./autoconverge.ts";
export * from "./errors.ts";
export { type MigrationFaultPhase, type SimFaults, type SimHostOptions, SimHypervisor } from "./sim/driver.ts";
export { PAGE_BYTES, type PrecopyInput, type PrecopyPlan, planPrecopy } from "./sim/precopy.ts";
export * from "./types.ts";
export { emitXlConfig, parseXlConfig, toXlConfig, type XlConfig } from "./xl/config.ts";
export { type XlDriverOptions, XlHypervisor } from "./xl/driver.ts";
export { classify, stderrSummary, xlRunner } from "./xl/exec.ts";
export * from "./xl/parse.ts";
