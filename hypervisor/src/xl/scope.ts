// The xl commands whose processes must outlive the agent: `xl create` and `xl restore` fork the
// domain's monitor (`xl-<name>`, which carries out on_reboot, on_crash and on_poweroff) and start
// its device models (QEMU); `xl migrate-receive` ends as the arrived domain's monitor. Started from
// the agent, they would live in its cgroup, and systemd (or a container runtime) kills that whole
// cgroup when the agent stops, restarts or crashes. Where systemd is PID 1 they start instead in a
// transient scope of their own under machine.slice, as libvirt's domains do through machined.

/** The scope one xl command runs in. */
export interface DomainScope {
  /** The transient unit, `kubexen-domain-<uuid>-<instance>.scope`. */
  unit: string;
  description: string;
}

export type ScopedVerb = "create" | "restore" | "migrate-receive";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const INSTANCE = /^[a-z0-9]{1,32}$/;

/** The slice the scopes go in: libvirt's and machined's, so host tooling sees them as machines. */
export const DOMAIN_SLICE = "machine.slice";

/**
 * The scope for one `xl <verb>` of the domain `uuid` (unknown for a restore or an incoming
 * migration whose caller did not say). `instance` tells apart two scopes of one domain at once:
 * a migration to the same host has the sender's monitor and the receiver's live side by side,
 * and a monitor can still be exiting when the domain starts again.
 */
export function domainScope(verb: ScopedVerb, uuid: string | undefined, instance: string): DomainScope {
  if (!INSTANCE.test(instance)) throw new Error(`scope instance must be 1-32 of [a-z0-9], got "${instance}"`);
  // Only a well-formed UUID goes into a unit name: anything else could make it invalid.
  const id = uuid && UUID.test(uuid) ? uuid.toLowerCase() : undefined;
  const what = verb === "migrate-receive" ? "incoming" : verb;
  return {
    unit: `kubexen-domain-${id ?? what}-${instance}.scope`,
    description: `kubexen domain ${id ?? "(unknown UUID)"} (xl ${verb})`,
  };
}

/**
 * The command line that runs `bin args` in `scope` through systemd-run, or `bin args` itself
 * when there is no scope. systemd-run --scope makes the scope with its own PID in it and then
 * execs the command, so stdin, stdout, stderr and the exit code are the command's own.
 * --collect: the scope goes away once empty even if something in it failed (a monitor killed).
 * --quiet: no "Running scope as unit" line mixed into xl's stderr.
 */
export function scopedCommand(
  bin: string,
  args: string[],
  scope: DomainScope | undefined,
): { command: string; args: string[] } {
  if (!scope) return { command: bin, args };
  return {
    command: "systemd-run",
    args: [
      "--scope",
      "--collect",
      "--quiet",
      `--slice=${DOMAIN_SLICE}`,
      `--unit=${scope.unit}`,
      `--description=${scope.description}`,
      "--",
      bin,
      ...args,
    ],
  };
}
