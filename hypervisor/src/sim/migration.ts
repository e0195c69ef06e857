// Live migration between sim hosts, with xl's handshake over the migration
// stream (wire.ts): the source announces the domain (H) and the target
// reserves its memory, holding it paused as `--incoming` (A); pre-copy rounds
// (P... R) while the guest runs; stop-and-copy with the guest paused (S); the
// target is ready (Y); go (G): the source renames its copy `--migratedaway`;
// the target runs it and says so (D), and the source destroys its copy. The
// rounds follow the pre-copy model (precopy.ts). Only a link lost after the go
// is ambiguous: the source then keeps its copy paused, never running.
import type { Duplex } from "node:stream";
import { HypervisorError, MigrationError } from "../errors.ts";
import type { DomainInfo, MigrateReceiveOptions, MigrateSendOptions, MigrationStats } from "../types.ts";
import type { SimDomain, SimDomains } from "./domains.ts";
import { accrue } from "./domains.ts";
import type { MigrationFaultPhase } from "./faults.ts";
import type { SimHostConfig } from "./host.ts";
import { PAGE_BYTES, planPrecopy, precopyInput } from "./precopy.ts";
import { FrameReader, sendRound, writeFrame } from "./wire.ts";

/** One end of a migration: the host's configuration and domains, and its injected faults. */
export interface MigrationEnd {
  readonly config: SimHostConfig;
  readonly domains: SimDomains;
  /** Whether the migration fails here, now. */
  fault(side: "send" | "receive", phase: MigrationFaultPhase): boolean;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export async function sendDomain(
  h: MigrationEnd,
  uuid: string,
  transport: Duplex,
  opts: MigrateSendOptions,
): Promise<MigrationStats> {
  const { config, domains } = h;
  const d = domains.get(uuid);
  const type = d.config.spec.type;
  if (type === "pv" && !config.shadow)
    throw new HypervisorError(
      "NotMigratable",
      `pv guests cannot live-migrate from ${config.hostname}: Xen was built without shadow paging`,
    );
  if (d.config.spec.pciDevices?.length)
    throw new HypervisorError("NotMigratable", `domain ${d.name} has PCI passthrough devices`);
  if (d.state !== "running" && d.state !== "blocked")
    throw new HypervisorError("NotMigratable", `domain ${d.name} is ${d.state}, not running`);
  const reader = new FrameReader(transport);
  const t0 = Date.now();
  const plan = planPrecopy(
    precopyInput({
      memoryMiB: d.memoryMiB,
      dirtyPagesPerSec: d.dirtyPagesPerSec,
      load: d.load,
      linkMiBps: config.linkMiBps,
      bandwidthMiBps: opts.bandwidthMiBps,
      autoConverge: opts.autoConverge,
    }),
  );
  const fail = (phase: string, err: unknown) => {
    transport.destroy();
    return new MigrationError(phase, message(err), false, err);
  };
  // Prepare: announce the domain; the target checks it has room.
  try {
    if (h.fault("send", "prepare")) throw new Error("injected fault");
    accrue(d);
    await writeFrame(transport, "H", { domain: { ...d, state: "paused", migration: "incoming" } });
    await reader.expect("A");
  } catch (err) {
    throw fail("prepare", err);
  }
  // Pre-copy rounds while the guest runs.
  let bytesSent = 0;
  try {
    for (const [i, round] of plan.rounds.entries()) {
      if (opts.signal?.aborted) throw new Error("aborted");
      await sendRound(transport, round, config, opts.signal);
      if (h.fault("send", "precopy")) throw new Error("injected fault");
      bytesSent += round.pages * PAGE_BYTES;
      opts.onProgress?.({
        round: i + 1,
        bytesSent,
        dirtyPages: plan.rounds[i + 1]?.pages ?? plan.final.pages,
        throttle: plan.rounds[i + 1]?.throttle ?? plan.final.throttle,
      });
    }
  } catch (err) {
    throw fail("precopy", err);
  }
  // Stop-and-copy: the guest is paused here from now on; 30 ms for device state and resume.
  domains.setState(d, "paused");
  try {
    if (opts.signal?.aborted) throw new Error("aborted");
    if (h.fault("send", "stopcopy")) throw new Error("injected fault");
    await sendRound(transport, { pages: plan.final.pages, seconds: plan.final.seconds + 0.03 }, config, opts.signal);
    await writeFrame(transport, "S", { rounds: plan.rounds.length + 1 });
    await reader.expect("Y");
  } catch (err) {
    domains.setState(d, "running");
    throw fail("stopcopy", err);
  }
  // Handover: from the moment we say go, the target may run the domain.
  d.migration = "migratedaway";
  domains.persist();
  let done: { ok: boolean; error?: string };
  try {
    if (h.fault("send", "handover")) throw new Error("injected fault: link lost after go");
    await writeFrame(transport, "G", {});
    if (h.fault("send", "confirm")) throw new Error("injected fault: link lost before the target confirmed");
    done = await reader.expect<{ ok: boolean; error?: string }>("D");
  } catch (err) {
    transport.destroy();
    // We cannot know whether the target runs it: keep our copy paused, never resume it.
    throw new MigrationError(
      "handover",
      `${err instanceof Error ? err.message : err}; the domain stays paused here as ${d.name}--migratedaway`,
      true,
      err,
    );
  }
  if (!done.ok) {
    d.migration = undefined;
    domains.setState(d, "running");
    transport.destroy();
    throw new MigrationError("resume", `target could not start the domain (${done.error}); resumed here`);
  }
  domains.remove(d);
  transport.end();
  return {
    bytes: plan.bytes,
    rounds: plan.rounds.length + 1,
    downtimeMs: plan.downtimeMs,
    totalMs: Math.max(plan.totalMs, Date.now() - t0),
    throttle: plan.final.throttle,
  };
}

/** Takes back a copy left paused as `--migratedaway`, once the cluster knows the target does not run it. */
export function resumeMigratedAway(domains: SimDomains, uuid: string): DomainInfo {
  const d = domains.get(uuid);
  if (d.migration !== "migratedaway")
    throw new HypervisorError("Failed", `domain ${d.name} is not a --migratedaway copy`);
  d.migration = undefined;
  domains.setState(d, "running");
  return domains.info(d);
}

export async function receiveDomain(
  h: MigrationEnd,
  transport: Duplex,
  opts: MigrateReceiveOptions,
): Promise<DomainInfo> {
  const { config, domains } = h;
  const reader = new FrameReader(transport);
  const refuse = async (phase: string, err: unknown): Promise<never> => {
    const msg = message(err);
    await writeFrame(transport, "X", { error: msg }).catch(() => {});
    transport.destroy();
    throw new MigrationError(phase, msg, false, err);
  };
  let hello: { domain: SimDomain };
  try {
    hello = await reader.expect<{ domain: SimDomain }>("H");
  } catch (err) {
    return refuse("prepare", err);
  }
  const incoming = hello.domain;
  opts.onAnnounce?.({ uuid: incoming.uuid, name: incoming.name, memoryMiB: incoming.memoryMiB });
  try {
    if (h.fault("receive", "prepare")) throw new Error("injected fault");
    const type = incoming.config.spec.type;
    if (type !== "pv" && !config.hap) throw new Error(`${type} guests need HAP, which ${config.hostname} lacks`);
    const free = domains.freeMemoryMiB();
    if (incoming.memoryMiB > free)
      throw new Error(`${incoming.memoryMiB} MiB needed, ${free} MiB free on ${config.hostname}`);
    if (domains.has(incoming.uuid)) throw new Error(`domain ${incoming.uuid} already exists on ${config.hostname}`);
  } catch (err) {
    return refuse("prepare", err);
  }
  // The incoming copy holds its memory from the start, paused, named --incoming.
  const d = domains.admit({ ...incoming, state: "paused", migration: "incoming", since: Date.now() });
  try {
    await writeFrame(transport, "A", {});
    for (;;) {
      const f = await reader.next();
      if (f.type === "P" || f.type === "R") {
        if (f.type === "R" && h.fault("receive", "precopy")) throw new Error("injected fault");
        continue;
      }
      if (f.type === "S") break;
      if (f.type === "X") throw new Error(`sender failed: ${f.payload.toString()}`);
      throw new Error(`unexpected ${f.type} frame during transfer`);
    }
    if (h.fault("receive", "stopcopy")) throw new Error("injected fault");
    await writeFrame(transport, "Y", {});
    await reader.expect("G");
  } catch (err) {
    domains.discard(d);
    transport.destroy();
    throw new MigrationError("transfer", message(err), false, err);
  }
  // Told to go: the domain is ours.
  if (h.fault("receive", "resume")) {
    domains.discard(d);
    await writeFrame(transport, "D", { ok: false, error: "injected fault: could not unpause" }).catch(() => {});
    transport.end();
    throw new MigrationError("resume", "could not unpause the received domain");
  }
  d.migration = undefined;
  domains.setState(d, "running");
  await writeFrame(transport, "D", { ok: true }).catch(() => {});
  transport.end();
  return domains.info(d);
}
