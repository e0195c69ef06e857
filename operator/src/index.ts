export { HostHealth, leaseExpiredForMs } from "./hosthealth.ts";
