// Whether a domain can live-migrate, as its agent reported it: one reading of
// the Migratable condition and status.migratable for every controller that
// asks (migration admission, maintenance drains, the balancer).
import type { XenDomainStatus } from "./xendomain.ts";

export interface Migratability {
  migratable: boolean;
  /** The agent's reason when it reported the domain not migratable. */
  why?: string;
}

/** Unreported counts as migratable: the migration itself finds out, and fails with the agent's reason. */
export function reportedMigratability(
  status: Pick<XenDomainStatus, "migratable" | "conditions"> | undefined,
): Migratability {
  const c = status?.conditions?.find((x) => x.type === "Migratable");
  if (c?.status === "False") return { migratable: false, why: c.message };
  return { migratable: status?.migratable !== false };
}
