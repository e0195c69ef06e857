// REST coordinates of each kind (the shape the SDK's Resource takes).
import { GROUP, VERSION } from "./meta.ts";

const r = (plural: string, kind: string, namespaced: boolean) => ({
  group: GROUP,
  version: VERSION,
  plural,
  kind,
  namespaced,
});

export const resources = {
  xenDomains: r("xendomains", "XenDomain", true),
  xenHosts: r("xenhosts", "XenHost", false),
  xenMigrations: r("xenmigrations", "XenMigration", true),
  xenMaintenances: r("xenmaintenances", "XenMaintenance", false),
  xenBalancers: r("xenbalancers", "XenBalancer", false),
  xenMigrationPolicies: r("xenmigrationpolicies", "XenMigrationPolicy", false),
} as const;

/** Lease of a host's node agent, in the agents' namespace: renewed as its heartbeat. */
const HOST_LEASE_PREFIX = "xenhost-";
export const hostLeaseName = (host: string) => `${HOST_LEASE_PREFIX}${host}`;
/** The host whose agent holds a Lease of that name, or undefined for any other Lease. */
export const hostOfLease = (lease: string) =>
  lease.startsWith(HOST_LEASE_PREFIX) ? lease.slice(HOST_LEASE_PREFIX.length) : undefined;
/** The Xen domain name of a XenDomain: namespace and name, unambiguous since namespaces have no dots. */
export const xenDomainName = (namespace: string, name: string) => `${namespace}.${name}`;
