// One conformance suite for every Hypervisor driver, written against the
// interface only. The sim driver runs it in every test run; the real-Xen lab
// runs it against the xl driver on real hosts.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Duplex } from "node:stream";
import { after, afterEach, before, describe, it } from "node:test";
import type { XenDomainSpec } from "@kubexen/crds";
import {
  type DomainConfig,
  type DomainInfo,
  type Hypervisor,
  HypervisorError,
  type HypervisorEvent,
} from "../src/index.ts";
import { restAfter } from "../src/xl/pace.ts";

export interface ConformanceHarness {
  /** Two hosts of the same driver (source and target for migration). */
  hosts(): Promise<[Hypervisor, Hypervisor]>;
  /** A bootable guest spec on these hosts (paths that exist there). */
  spec(overrides?: Partial<XenDomainSpec>): XenDomainSpec;
  /** A connected pair of byte streams between the hosts' migration endpoints. */
  link(): Promise<[Duplex, Duplex]>;
  /** A guest type the hosts cannot live-migrate, if any (pv without shadow paging). */
  unmigratableType?: "pv";
  cleanup?(): Promise<void>;
  /** Real hosts are slow: time allowed for one operation. */
  opTimeoutMs?: number;
  /**
   * Time for a fresh guest to boot far enough to act on a hot-added vCPU (a guest onlines it
   * itself, once running): on an emulated host over two minutes. Default opTimeoutMs.
   */
  guestBootMs?: number;
  /**
   * Whether the guest has booted far enough to answer a suspend request (its PV drivers up), which
   * a save and the last round of a live migration need. Default: at once.
   */
  booted?(hv: Hypervisor, uuid: string): Promise<boolean>;
  /**
   * Both hosts are one machine (xl migrates to localhost): after a migration the domain is
   * there once, under a new domid, rather than gone from the source.
   */
  sameHost?: boolean;
  /** The smallest guest that boots on these hosts, in MiB (default 64; a real 6.1 kernel needs 128). */
  guestMemoryMiB?: number;
}

const isCode = (code: string) => (e: unknown) => e instanceof HypervisorError && e.code === code;

/** The harnesses' test guest: a PVH domain booting `kernel` and `ramdisk` with `memoryMiB`. */
export function guestSpec(
  boot: { kernel: string; ramdisk: string },
  memoryMiB: number,
): (overrides?: Partial<XenDomainSpec>) => XenDomainSpec {
  return (o = {}) => ({
    type: "pvh",
    vcpus: 1,
    memory: `${memoryMiB}Mi`,
    boot: { ...boot, cmdline: "console=hvc0" },
    priority: 0,
    runStrategy: "Always",
    powerState: "Running",
    evictionStrategy: "LiveMigrateIfPossible",
    terminationGracePeriodSeconds: 30,
    ...o,
  });
}

export function conformanceSuite(name: string, h: ConformanceHarness): void {
  describe(`hypervisor conformance: ${name}`, { timeout: 30 * 60_000 }, () => {
    let a: Hypervisor;
    let b: Hypervisor;
    const m = h.guestMemoryMiB ?? 64;
    const mem = `${m}Mi`;
    const made: Array<[Hypervisor, string]> = [];
    const cfg = (overrides: Partial<XenDomainSpec> = {}, nameHint = "conf"): DomainConfig => {
      const uuid = randomUUID();
      const spec = h.spec(overrides);
      return {
        name: `${nameHint}-${uuid.slice(0, 8)}`,
        uuid,
        spec,
        macs: (spec.networks ?? []).map((_, i) => `00:16:3e:00:00:${(10 + i).toString(16)}`),
      };
    };
    const create = async (hv: Hypervisor, c: DomainConfig, opts?: { paused?: boolean }) => {
      made.push([hv, c.uuid]);
      return hv.create(c, opts);
    };
    // Rests as the xl driver does between its own looks (four times what a look cost, at least
    // 100 ms): a look on a real host is an `xl list` of over a second in an emulated dom0, and back
    // to back they starve the guest being waited for.
    const waitFor = async (what: string, fn: () => Promise<boolean>, ms = h.opTimeoutMs ?? 20_000) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        const t = Date.now();
        if (await fn()) return;
        await new Promise((r) => setTimeout(r, restAfter(100, Date.now() - t)));
      }
      throw new Error(`timed out waiting for ${what}`);
    };

    const untilBooted = (hv: Hypervisor, uuid: string) =>
      waitFor("the guest booted", () => h.booted?.(hv, uuid) ?? Promise.resolve(true), h.guestBootMs ?? h.opTimeoutMs);

    before(async () => {
      [a, b] = await h.hosts();
    });
    // A test that failed half-way leaves its guest: gone before the next test, which it would
    // otherwise slow (on an emulated host, starve).
    afterEach(async () => {
      for (const [hv, uuid] of made.splice(0))
        if (await hv.getDomain(uuid).catch(() => undefined)) await hv.destroy(uuid).catch(() => {});
    });
    after(async () => {
      await h.cleanup?.();
    });

    it("reports host facts", async () => {
      const info = await a.hostInfo();
      assert.ok(info.cpus > 0);
      assert.ok(info.totalMemoryMiB > info.freeMemoryMiB && info.freeMemoryMiB > 0);
      assert.ok(info.dom0MemoryMiB > 0);
      assert.ok(info.guestTypes.length > 0);
      for (const t of info.liveMigratable) assert.ok(info.guestTypes.includes(t));
      assert.match(info.xenVersion, /^\d+\.\d+/);
    });

    // One guest, booted once, serves every test that needs a running kernel (hotplug, balloon,
    // suspend): on an emulated host a boot takes minutes, and each one is a chance to stall.
    describe("one booted guest, in turn", () => {
      const c = cfg({ memory: mem, maxMemory: `${2 * m}Mi`, vcpus: 1, maxVcpus: 2 });
      let domid = 0;
      let free0 = 0;
      before(async () => {
        free0 = (await a.hostInfo()).freeMemoryMiB;
      });
      // Its tests run in order on the one guest (made outside `create`, so that no afterEach
      // destroys it between them).
      it("creates a domain that is listed by UUID, running, with its memory and vCPUs", async () => {
        const d = await a.create(c);
        domid = d.domid;
        assert.equal(d.uuid, c.uuid);
        assert.equal(d.name, c.name);
        assert.ok(d.domid > 0);
        const listed = (await a.listDomains()).find((x) => x.uuid === c.uuid);
        assert.ok(listed, "listed");
        assert.ok(["running", "blocked"].includes(listed.state), listed.state);
        assert.ok(Math.abs(listed.memoryMiB - m) <= 2, `memory ${listed.memoryMiB}`);
        assert.equal(listed.vcpus, 1);
        assert.ok((await a.hostInfo()).freeMemoryMiB <= free0 - (m - 4), "free memory went down");
        await untilBooted(a, c.uuid);
      });

      it("refuses a second domain with the same UUID or name, leaving one", async () => {
        await assert.rejects(a.create({ ...c, name: `${c.name}-x` }), isCode("AlreadyExists"));
        await assert.rejects(a.create({ ...c, uuid: randomUUID() }), isCode("AlreadyExists"));
        const same = (await a.listDomains()).filter((x) => x.name === c.name || x.uuid === c.uuid);
        assert.deepEqual(
          same.map((x) => x.domid),
          [domid],
        );
      });

      it("pauses and unpauses, and watch reports it", async () => {
        const events: HypervisorEvent[] = [];
        const stop = a.watch((e) => events.push(e));
        try {
          await a.pause(c.uuid);
          assert.equal((await a.getDomain(c.uuid))?.state, "paused");
          await waitFor("a paused event", async () =>
            events.some((e) => e.type === "state" && e.uuid === c.uuid && e.state === "paused"),
          );
          await a.unpause(c.uuid);
          assert.ok(["running", "blocked"].includes((await a.getDomain(c.uuid))?.state ?? ""));
        } finally {
          stop();
        }
      });

      it("balloons memory within maxMemory and refuses beyond it", async () => {
        await a.setMemory(c.uuid, (m * 3) / 2);
        await waitFor(
          "balloon target",
          async () => Math.abs(((await a.getDomain(c.uuid))?.memoryMiB ?? 0) - (m * 3) / 2) <= 4,
        );
        await assert.rejects(a.setMemory(c.uuid, 4096), (e: unknown) => e instanceof HypervisorError);
      });

      it("changes online vCPUs up to maxVcpus and credit2 parameters", async () => {
        await a.setVcpus(c.uuid, 2);
        await waitFor("vcpus", async () => (await a.getDomain(c.uuid))?.vcpus === 2, h.guestBootMs ?? h.opTimeoutMs);
        await assert.rejects(a.setVcpus(c.uuid, 3), (e: unknown) => e instanceof HypervisorError);
        await a.setCredit2(c.uuid, { weight: 512, cap: 50 });
      });

      it("saves a domain to a file and restores it with the same UUID and a new domid", async () => {
        const path = `/tmp/kubexen-conf-${c.uuid}.save`;
        await a.save(c.uuid, path);
        assert.equal(await a.getDomain(c.uuid), undefined);
        const r = await a.restore(path);
        assert.equal(r.uuid, c.uuid);
        assert.notEqual(r.domid, domid);
        domid = r.domid;
      });

      it("live-migrates a running domain: gone from the source, running on the target with the same UUID", async () => {
        const [sa, sb] = await h.link();
        const progress: number[] = [];
        const [stats, received] = await Promise.all([
          a.migrateSend(c.uuid, sa, { onProgress: (p) => progress.push(p.round) }),
          b.migrateReceive(sb),
        ]);
        assert.equal(received.uuid, c.uuid);
        assert.equal(received.name, c.name);
        assert.ok(["running", "blocked"].includes(received.state));
        if (h.sameHost) {
          const copies = (await b.listDomains()).filter((x) => x.uuid === c.uuid);
          assert.equal(copies.length, 1, "one copy left");
          assert.notEqual(copies[0]?.domid, domid, "the received copy");
          assert.equal(copies[0]?.migration, undefined, "under its own name");
        } else assert.equal(await a.getDomain(c.uuid), undefined, "gone from the source");
        assert.ok(stats.totalMs > 0);
      });

      it("destroys it, and watch reports it gone", async () => {
        const events: HypervisorEvent[] = [];
        const stop = b.watch((e) => events.push(e));
        try {
          await b.destroy(c.uuid);
          assert.equal(await b.getDomain(c.uuid), undefined);
          await waitFor("a gone event", async () => events.some((e) => e.type === "gone" && e.uuid === c.uuid));
        } finally {
          stop();
        }
      });

      after(async () => {
        for (const hv of [a, b])
          if (await hv.getDomain(c.uuid).catch(() => undefined)) await hv.destroy(c.uuid).catch(() => {});
      });
    });

    it("refuses a domain larger than free memory, creating nothing", async () => {
      const free = (await a.hostInfo()).freeMemoryMiB;
      const c = cfg({ memory: `${free + 1024}Mi` });
      await assert.rejects(a.create(c), isCode("InsufficientMemory"));
      assert.equal(await a.getDomain(c.uuid), undefined);
    });

    it("refuses a domain whose kernel does not exist, creating nothing", async () => {
      const c = cfg({ boot: { kernel: "/nonexistent/kubexen/vmlinuz" } });
      await assert.rejects(a.create(c), isCode("MissingFile"));
      assert.equal(await a.getDomain(c.uuid), undefined);
    });

    it("creates paused, and destroys a domain that ignores shutdown once the timeout passes", async () => {
      const c = cfg({ memory: mem });
      const d = await create(a, c, { paused: true });
      assert.equal(d.state, "paused");
      const how = await a.shutdown(c.uuid, 2000);
      assert.equal(how, "destroyed");
      assert.equal(await a.getDomain(c.uuid), undefined);
    });

    it("answers NotFound for a UUID it does not know", async () => {
      await assert.rejects(a.destroy(randomUUID()), isCode("NotFound"));
      await assert.rejects(a.pause(randomUUID()), isCode("NotFound"));
    });

    if (h.unmigratableType) {
      it(`refuses to live-migrate a ${h.unmigratableType} guest and keeps it running`, async () => {
        const c = cfg({ type: "pv", memory: mem }, "pv");
        const d: DomainInfo = await create(a, c);
        const [sa, sb] = await h.link();
        const recv = b.migrateReceive(sb).catch((e: unknown) => e);
        await assert.rejects(a.migrateSend(c.uuid, sa), isCode("NotMigratable"));
        sa.destroy();
        await recv;
        assert.equal((await a.getDomain(c.uuid))?.domid, d.domid, "still running on the source");
        if (h.sameHost) assert.equal((await b.listDomains()).filter((x) => x.uuid === c.uuid).length, 1);
        else assert.equal(await b.getDomain(c.uuid), undefined);
        await a.destroy(c.uuid);
      });
    }
  });
}
