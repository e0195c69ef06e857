export * from "./balancer-plan.ts";
export * from "./crd-upgrade.ts";
export { HostHealth, leaseExpiredForMs } from "./hosthealth.ts";
export { Lifecycle } from "./lifecycle.ts";
export { MIGRATION_MANAGER, MigrationController } from "./migration.ts";
export * from "./migration-plan.ts";
export { Operator, type OperatorOptions } from "./operator.ts";
export * from "./placement.ts";
export { DOMAIN_FINALIZER, SCHEDULER_MANAGER, Scheduler } from "./scheduler.ts";
