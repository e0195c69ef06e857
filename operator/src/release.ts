// Unbinding a domain that runs nowhere so the scheduler places it again,
// keeping its identity (UUID, MACs): used by HA for a fenced host's domains
// and by maintenance for domains evicted by restart.
import { resources, statusApply, type XenDomain } from "@kubexen/crds";
import { type KubeClient, rfc3339 } from "@kubexen/sdk";
import { SCHEDULER_MANAGER } from "./scheduler.ts";

export const RELEASE_MANAGER = "kubexen-release";

export async function releaseDomain(client: KubeClient, xd: XenDomain, reason: string, message: string): Promise<void> {
  const meta = { name: xd.metadata.name, namespace: xd.metadata.namespace };
  // What the old host's agent reported no longer holds: the domain runs nowhere now.
  await client.applyStatus(
    resources.xenDomains,
    statusApply("XenDomain", meta, { phase: "Pending", state: "absent" }),
    RELEASE_MANAGER,
  );
  // Dropping host under the scheduler's manager unbinds it; the identity stays.
  await client.applyStatus(
    resources.xenDomains,
    statusApply("XenDomain", meta, {
      uuid: xd.status?.uuid,
      interfaces: xd.status?.interfaces,
      conditions: [
        {
          type: "Scheduled",
          status: "False",
          reason,
          message,
          lastTransitionTime: rfc3339(),
          observedGeneration: xd.metadata.generation,
        },
      ],
    }),
    SCHEDULER_MANAGER,
  );
}
