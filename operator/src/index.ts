export { HostHealth, leaseExpiredForMs } from "./hosthealth.ts";
export * from "./placement.ts";
