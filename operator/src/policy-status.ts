// Reports on XenMigrationPolicy/default whether the operator applies it: Ready=True for the
// generation the migration controller decides from, with the limits in force in its message.
// Without it, a policy applied a moment ago and one already enforced look the same to users,
// to GitOps health checks and to anything that must wait for new limits before migrating.
import {
  resources,
  statusApply,
  type XenMigrationPolicy,
  type XenMigrationPolicySpec,
  type XenMigrationPolicyStatus,
} from "@kubexen/crds";
import { jsonEqual, type Logger, type ReconcileResult, type Store, setCondition, type Writer } from "@kubexen/sdk";
import type { OperatorContext } from "./context.ts";

export const POLICY_MANAGER = "kubexen-migration-policy";

/** What the policy makes the operator do, in one sentence. */
export function policySummary(p: XenMigrationPolicySpec): string {
  return (
    `in force: ${p.parallelMigrationsPerCluster} transfers in the cluster, ` +
    `${p.parallelOutboundMigrationsPerHost} out of and ${p.parallelInboundMigrationsPerHost} into each host; ` +
    `abort after ${p.completionTimeoutPerGiB} s per GiB or ${p.progressTimeoutSeconds} s without progress; ` +
    `${p.bandwidthMiBps ? `${p.bandwidthMiBps} MiB/s` : "unlimited bandwidth"} per migration; ` +
    `auto-converge ${p.autoConverge ? "on" : "off"}`
  );
}

export interface PolicyStatusDeps {
  client: Writer;
  /** The informer the migration controller reads its limits from: its state is what is in force. */
  policies: Store<XenMigrationPolicy>;
  log: Logger;
}

export class PolicyStatus {
  private readonly d: PolicyStatusDeps;
  constructor(d: PolicyStatusDeps) {
    this.d = d;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const p = this.d.policies.get(key);
    if (!p) return undefined;
    const gen = p.metadata.generation;
    const old = p.status?.conditions;
    const conditions = setCondition(old, {
      type: "Ready",
      status: "True",
      reason: "InForce",
      message: policySummary(p.spec),
      observedGeneration: gen,
    });
    if (p.status?.observedGeneration === gen && jsonEqual(conditions, old)) return undefined;
    const status: XenMigrationPolicyStatus = {
      observedGeneration: gen,
      conditions: conditions as XenMigrationPolicyStatus["conditions"],
    };
    await this.d.client.applyStatus(
      resources.xenMigrationPolicies,
      statusApply("XenMigrationPolicy", { name: p.metadata.name }, status),
      POLICY_MANAGER,
    );
    this.d.log.info({ policy: key, generation: gen }, "migration policy in force");
    return undefined;
  }
}

/** Says on the policy which generation the migration controller decides from. */
export function setupPolicyStatus(c: OperatorContext): PolicyStatus {
  const policyStatus = new PolicyStatus({ client: c.mgr.client, policies: c.policies, log: c.log });
  c.mgr
    .controller("migration-policy", (k) => policyStatus.reconcile(k))
    .for(c.policies)
    .complete();
  return policyStatus;
}
