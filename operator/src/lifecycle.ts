// Deletion of XenDomains: the finalizer (set at creation by the admission
// policy in crds/src/admission.ts, or by the scheduler at binding) holds a deleted
// XenDomain until its domain is gone from its host (the agent reports
// state absent), or it was never bound, or its host no longer exists or
// was fenced (it runs nothing).
import { DOMAIN_FINALIZER, resources, type XenDomain, type XenHost } from "@kubexen/crds";
import {
  hasFinalizer,
  type Logger,
  type ReconcileResult,
  removeFinalizer,
  type Store,
  type Writer,
} from "@kubexen/sdk";
import type { OperatorContext } from "./context.ts";
import { isFenced } from "./fencing.ts";

export class Lifecycle {
  private readonly d: { client: Writer; domains: Store<XenDomain>; hosts: Store<XenHost>; log: Logger };
  constructor(d: Lifecycle["d"]) {
    this.d = d;
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const xd = this.d.domains.get(key);
    if (!xd?.metadata.deletionTimestamp || !hasFinalizer(xd, DOMAIN_FINALIZER)) return undefined;
    const host = xd.status?.host;
    const h = host ? this.d.hosts.get(host) : undefined;
    const gone = !host || xd.status?.state === "absent" || !h || isFenced(h);
    if (!gone) return { requeueAfterMs: 5_000 };
    await removeFinalizer(this.d.client, resources.xenDomains, xd, DOMAIN_FINALIZER);
    this.d.log.info({ key, host }, "domain stopped on its host: released the XenDomain");
    return undefined;
  }
}

/** Lifecycle: each XenDomain's finalizer. */
export function setupLifecycle(c: OperatorContext): Lifecycle {
  const lifecycle = new Lifecycle({ client: c.mgr.client, domains: c.domains, hosts: c.hosts, log: c.log });
  c.mgr
    .controller("lifecycle", (k) => lifecycle.reconcile(k))
    .for(c.domains)
    .complete();
  return lifecycle;
}
