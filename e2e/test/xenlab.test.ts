// The whole system on real Xen: two Xen 4.17 hosts under QEMU, each running
// the node agent in its dom0, against a real control plane and the operator.
// Every claim is checked on the hosts themselves: `xl list` in dom0, and the
// guests' own consoles (each test guest prints a counter once a second, so a
// live migration, where it goes on, is told apart from a restart, where it
// starts over). See e2e/xenlab/README.md.
import assert from "node:assert/strict";
import { cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import {
  resources,
  type XenDomain,
  type XenHost,
  type XenMaintenance,
  type XenMigration,
  xenDomainName,
} from "@kubexen/crds";
import { Operator } from "@kubexen/operator";
import { createLogger, KubeClient, SdkMetrics } from "@kubexen/sdk";
import { type ControlPlane, startKubexenControlPlane, until } from "../src/index.ts";
import { LabHost } from "../src/xenlab/host.ts";
import { XenLab } from "../src/xenlab/lab.ts";

const NS = "lab";
const log = createLogger("xenlab-test", process.env.LOG_LEVEL ?? "warn");
const repo = fileURLToPath(new URL("../..", import.meta.url));
const artifacts = join(repo, "test-artifacts", `xenlab-${new Date().toISOString().replace(/[:.]/g, "-")}`);
// A Lease and fence timeout of 60 s (the agents' default is 40): an emulated dom0 busy receiving a
// migration can miss renewals for 20 s, and one running three guests after a drain (one of them a
// booting PV guest, all on its one emulated CPU, on a 2-core machine that also runs the other
// host) went 42 s without a renewal, its guests printing once in 5 s instead of once a second.
// The watchdog allows 30 s: a host once stalled past 10 s while building a guest.
const FENCE = { heartbeat: 5, lease: 60, fenceTimeout: 60, watchdogTimeout: 30 };
const MARGIN_MS = 10_000;
// A test guest boots in under a minute on a lab host's one emulated CPU, but two booting at once
// (a drain, a fenced host's domains) have taken over two minutes.
const BOOT_MS = 5 * 60_000;
const MIN = 60_000;

interface XlRecord {
  domid: number;
  config: { c_info: { name: string; uuid: string; type: string } };
}

describe("xenlab: kubexen on real Xen hosts", { timeout: 70 * MIN }, () => {
  let cp: ControlPlane;
  let client: KubeClient;
  let lab: XenLab;
  let op: Operator;
  const t0 = Date.now();
  let failed = false;
  const timings: string[] = [];

  const xd = (name: string) => client.get<XenDomain>(resources.xenDomains, name, NS);
  const xlName = (name: string) => xenDomainName(NS, name);
  /** `xl list -l` on a host: every domain but dom0. */
  const xlRecords = async (h: LabHost, timeoutMs?: number): Promise<XlRecord[]> => {
    const out = await h.execOk("xl list -l", timeoutMs);
    return out.trim() ? (JSON.parse(out) as XlRecord[]) : [];
  };
  const onHost = async (h: LabHost, uuid: string, timeoutMs?: number) =>
    (await xlRecords(h, timeoutMs)).filter((r) => r.config.c_info.uuid === uuid);
  const apply = (yaml: string) => cp.kubectlOk(["apply", "-f", "-"], { input: yaml });
  const domainYaml = (name: string, type: "pvh" | "pv", extra = "") => `
apiVersion: kubexen.io/v1alpha1
kind: XenDomain
metadata:
  name: ${name}
  namespace: ${NS}
spec:
  type: ${type}
  vcpus: 1
  memory: 128Mi
  boot:
    kernel: /guest/vmlinuz
    ramdisk: /guest/initrd
    cmdline: console=hvc0
${extra}`;
  const waitPhase = async (name: string, phase: string, timeoutMs: number, host?: string) => {
    await until(
      `XenDomain ${name} ${phase}${host ? ` on ${host}` : ""}`,
      async () => {
        const d = await xd(name);
        return d.status?.phase === phase && (!host || d.status.host === host);
      },
      timeoutMs,
      1000,
    );
    return xd(name);
  };
  const waitMigration = async (name: string, timeoutMs: number) => {
    let m: XenMigration | undefined;
    await until(
      `XenMigration ${name} finished`,
      async () => {
        m = await client.get<XenMigration>(resources.xenMigrations, name, NS);
        return ["Succeeded", "Failed", "Aborted"].includes(m.status?.phase ?? "");
      },
      timeoutMs,
      1000,
    );
    return m as XenMigration;
  };
  const other = (name: string) => {
    const h = lab.hosts.find((x) => x.name !== name);
    if (!h) throw new Error(`no host besides ${name}`);
    return h;
  };
  /** Runs a scenario, noting its time and whether it failed (for the artifacts). */
  const scenario = (name: string, fn: () => Promise<void>, timeoutMs?: number) =>
    it(name, timeoutMs ? { timeout: timeoutMs } : {}, async () => {
      const t = Date.now();
      try {
        await fn();
      } catch (err) {
        failed = true;
        throw err;
      } finally {
        timings.push(`${name}: ${((Date.now() - t) / 1000).toFixed(0)} s`);
      }
    });

  before(async () => {
    mkdirSync(artifacts, { recursive: true });
    cp = await startKubexenControlPlane([NS]);
    client = new KubeClient(cp.kubeConfig(), { metrics: new SdkMetrics() });
    try {
      lab = await XenLab.start(cp, {
        dir: join(artifacts, "lab"),
        agentArgs: [
          "--fencing=xen",
          `--heartbeat-interval=${FENCE.heartbeat}`,
          `--lease-duration=${FENCE.lease}`,
          `--fence-timeout=${FENCE.fenceTimeout}`,
          `--watchdog-timeout=${FENCE.watchdogTimeout}`,
        ],
        progress: (msg) => console.log(`xenlab: ${msg}`),
      });
    } catch (err) {
      failed = true;
      throw err;
    }
    timings.push(`image and boot: ${((Date.now() - t0) / 1000).toFixed(0)} s (${lab.accel})`);
    // Emulated hosts move memory two orders of magnitude slower than real ones: the administrator
    // of such a cluster would raise the completion timeout, as this policy does.
    await apply(`
apiVersion: kubexen.io/v1alpha1
kind: XenMigrationPolicy
metadata:
  name: default
spec:
  completionTimeoutPerGiB: 4800
`);
    op = new Operator({
      kubeConfig: cp.kubeConfig(),
      migrationCa: lab.migrationCa,
      leaderElection: false,
      logger: log,
      fenceMarginMs: MARGIN_MS,
    });
    await op.start();
  });

  after(async () => {
    await op?.stop();
    if (lab && failed) {
      for (const h of lab.hosts.filter((x) => x.running)) {
        const r = await h
          .exec("cat /var/log/kubexen-agent.log; xl list -v; dmesg | tail -100", 30_000)
          .catch(() => undefined);
        if (r) writeFileSync(join(h.dir, "dom0-state.txt"), `${r.stdout}\n${r.stderr}`);
      }
    }
    await lab?.stop();
    if (failed && cp) cpSync(join(cp.dir), join(artifacts, "controlplane"), { recursive: true });
    await cp?.stop();
    console.log(`xenlab: total wall time ${((Date.now() - t0) / 1000).toFixed(0)} s\n  ${timings.join("\n  ")}`);
    if (failed) console.log(`xenlab: consoles, agent logs and disks kept in ${artifacts}`);
    else rmSync(artifacts, { recursive: true, force: true });
  });

  // The live guest the later scenarios follow: web-1, then (after scenario 2) web-2, so that no
  // host runs more than two guests (each idle one costs an emulated host a fifth of a real core).
  let web: { name: string; uuid: string; host: string; domid: number } = { name: "", uuid: "", host: "", domid: 0 };

  // First, while the hosts run nothing else: the suite builds, boots, saves, restores and migrates
  // guests on one emulated CPU, and on a host already busy (a 2-core machine also running the other
  // host's guests and a restarting agent) its xl calls timed out and the guests it left behind
  // starved the host until it fenced itself.
  scenario(
    "8. the hypervisor conformance suite passes against the xl driver on a lab host",
    async () => {
      const host = lab.hosts[0] as LabHost;
      // Written in dom0 as it goes, so that a run cut short still shows how far it got.
      const r = await host
        .execDetached(
          "cd /opt/kubexen && node --test --test-reporter=tap --test-timeout=1200000 hypervisor/test/xl.lab-conformance.ts > /tmp/conformance.tap 2>&1; code=$?; cat /tmp/conformance.tap; exit $code",
          25 * MIN,
        )
        .finally(async () => {
          // Cut short, it must not go on loading the host (nor leave its guests, whatever their
          // names) under the next scenarios: nothing else runs on the host yet.
          const tap = await host
            .exec(
              "pkill -f xl.lab-conformance; for d in $(xl list | awk 'NR > 2 {print $2}'); do xl destroy $d; done; cat -v /tmp/conformance.tap",
              2 * MIN,
            )
            .catch(() => undefined);
          if (tap) writeFileSync(join(artifacts, "conformance.tap"), tap.stdout);
        });
      const summary = r.stdout.split("\n").filter((l) => /^# (tests|pass|fail|skipped|todo) /.test(l));
      console.log(`xenlab: conformance on ${host.name}: ${summary.join(", ")}`);
      assert.equal(
        r.code,
        0,
        `conformance failed:\n${r.stdout
          .split("\n")
          .filter((l) => /not ok|Error|expected|actual/.test(l))
          .join("\n")}`,
      );
      assert.ok(summary.includes("# fail 0"), summary.join(", "));
      assert.ok(summary.includes("# skipped 0"), summary.join(", "));
    },
    28 * MIN,
  );

  scenario("1. an applied PVH XenDomain runs on a real host; status matches xl list -l there", async () => {
    await apply(domainYaml("web-1", "pvh", "  evictionStrategy: LiveMigrate\n"));
    const d = await waitPhase("web-1", "Running", 5 * MIN);
    const host = lab.host(d.status?.host ?? "");
    const recs = await xlRecords(host);
    const rec = recs.find((r) => r.config.c_info.name === xlName("web-1"));
    assert.ok(rec, `xl list -l on ${host.name} shows ${xlName("web-1")}: ${recs.map((r) => r.config.c_info.name)}`);
    assert.equal(d.status?.uuid, rec.config.c_info.uuid);
    assert.equal(d.status?.domid, rec.domid);
    assert.equal(rec.config.c_info.type, "pvh");
    assert.equal((await onHost(other(host.name), rec.config.c_info.uuid)).length, 0, "not on the other host");
    // The guest really runs: its counter appears on the host's console.
    await host.waitConsole(LabHost.guestLine(xlName("web-1"), "kubexen-guest alive 3"), BOOT_MS);
    web = { name: "web-1", uuid: rec.config.c_info.uuid, host: host.name, domid: rec.domid };
  });

  scenario("2. a XenMigration moves it live: Succeeded, on the target only, its counter goes on", async () => {
    const source = lab.host(web.host);
    const target = other(web.host);
    const before = source.guestCounter(xlName("web-1"));
    await apply(`
apiVersion: kubexen.io/v1alpha1
kind: XenMigration
metadata:
  name: web-1-move
  namespace: ${NS}
spec:
  domain: web-1
  targetHost: ${target.name}
  reason: User
`);
    const m = await waitMigration("web-1-move", 8 * MIN);
    assert.equal(m.status?.phase, "Succeeded", m.status?.failureReason);
    assert.equal(m.status?.sourceHost, source.name);
    assert.equal(m.status?.targetHost, target.name);
    assert.ok((m.status?.bytesTransferred ?? 0) >= 60 * 1024 * 1024, `bytes ${m.status?.bytesTransferred}`);
    assert.ok((m.status?.totalTimeMs ?? 0) > 0, "total time recorded");
    assert.ok(m.status?.downtimeMs !== undefined, "downtime recorded");
    assert.equal((await onHost(source, web.uuid)).length, 0, "gone from the source");
    const there = await onHost(target, web.uuid);
    assert.equal(there.length, 1, "on the target");
    assert.equal(there[0]?.config.c_info.name, xlName("web-1"), "under its own name, not --incoming");
    const d = await waitPhase("web-1", "Running", MIN, target.name);
    assert.equal(d.status?.domid, there[0]?.domid);
    // The counter goes on where it was: no restart.
    const lastBefore = Math.max(...before.map((x) => x.n));
    await target.waitConsole(LabHost.guestLine(xlName("web-1"), "kubexen-guest alive \\d+"), MIN);
    const after = target.guestCounter(xlName("web-1"));
    assert.ok(after.length > 0, "the guest prints on the target");
    assert.ok(
      Math.min(...after.map((x) => x.n)) > lastBefore,
      `counter on the target starts at ${Math.min(...after.map((x) => x.n))}, after ${lastBefore} on the source`,
    );
    web = { ...web, host: target.name, domid: there[0]?.domid ?? 0 };
  });

  // The maintenance empties the host web-1 left: two fresh domains go there first, one after the
  // other (two guests booting at once on one emulated CPU have hung in their boot).
  let fresh = { host: "", web2: "" };

  scenario("4a. a PV domain is reported not live-migratable on its XenHost and XenDomain", async () => {
    const host = other(web.host).name;
    // web-1 has proven its migration: gone, it leaves room for the drain's guests.
    await client.delete(resources.xenDomains, "web-1", NS);
    await client.mergePatch(resources.xenHosts, web.host, undefined, { spec: { unschedulable: true } });
    await apply(domainYaml("web-2", "pvh", "  evictionStrategy: LiveMigrate\n"));
    const w2 = await waitPhase("web-2", "Running", 5 * MIN, host);
    await lab.host(host).waitConsole(LabHost.guestLine(xlName("web-2"), "kubexen-guest alive 2"), BOOT_MS);
    await apply(domainYaml("legacy-1", "pv", "  evictionStrategy: LiveMigrateIfPossible\n"));
    const d = await waitPhase("legacy-1", "Running", 5 * MIN, host);
    // Its agent shuts it down cleanly first (up to its 30 s grace period), then destroys it.
    await until(
      "web-1 destroyed on its host",
      async () => (await onHost(lab.host(web.host), web.uuid)).length === 0,
      3 * MIN,
      2000,
    );
    await client.mergePatch(resources.xenHosts, web.host, undefined, { spec: { unschedulable: false } });
    const h = await client.get<XenHost>(resources.xenHosts, host);
    assert.ok(h.status?.capabilities?.guestTypes.includes("pv"), "runs pv");
    assert.ok(!h.status?.capabilities?.liveMigratable.includes("pv"), "pv is not live-migratable");
    assert.ok(h.status?.capabilities?.liveMigratable.includes("pvh"), "pvh is");
    assert.equal(h.status?.capabilities?.shadow, false);
    await until("legacy-1 Migratable=False", async () => {
      const x = await xd("legacy-1");
      return (
        x.status?.migratable === false && x.status.conditions?.find((c) => c.type === "Migratable")?.status === "False"
      );
    });
    assert.equal((await xd("web-2")).status?.migratable, true);
    const rec = (await onHost(lab.host(host), d.status?.uuid ?? "")).at(0);
    assert.equal(rec?.config.c_info.type, "pv");
    await lab.host(host).waitConsole(LabHost.guestLine(xlName("legacy-1"), "kubexen-guest alive 2"), BOOT_MS);
    fresh = { host, web2: w2.status?.uuid ?? "" };
  });

  scenario(
    "3 and 4b. XenMaintenance evacuates a host: PVH live-migrated, PV restarted elsewhere; deleting it uncordons",
    async () => {
      const host = lab.host(fresh.host);
      const dest = other(fresh.host);
      const pvBefore = await xd("legacy-1");
      const countBefore = Math.max(...host.guestCounter(xlName("web-2")).map((x) => x.n));
      const destLine = dest.console.length;
      await apply(`
apiVersion: kubexen.io/v1alpha1
kind: XenMaintenance
metadata:
  name: ${host.name}-bios
spec:
  host: ${host.name}
  reason: BIOS update
`);
      let mt: XenMaintenance | undefined;
      await until(
        "maintenance Drained",
        async () => {
          mt = await client.get<XenMaintenance>(resources.xenMaintenances, `${host.name}-bios`);
          return mt.status?.phase === "Drained";
        },
        10 * MIN,
        2000,
      );
      // (The maintenance closes the host to placement without touching spec.unschedulable, which is the
      // administrator's; that placement skips it is proven in operator/test/maintenance.test.ts.)
      const records = (await xlRecords(host)).filter((r) => r.domid !== 0);
      assert.deepEqual(
        records.map((r) => r.config.c_info.name),
        [],
        "nothing left on the host",
      );
      // PVH: live-migrated, same domain, counter goes on.
      const w = await waitPhase("web-2", "Running", MIN, dest.name);
      assert.equal(w.status?.uuid, fresh.web2);
      assert.equal((await onHost(dest, fresh.web2)).length, 1);
      await dest.waitConsole(LabHost.guestLine(xlName("web-2"), "kubexen-guest alive \\d+"), MIN, destLine);
      const after = dest.guestCounter(xlName("web-2"));
      assert.ok(
        after.length > 0 && Math.min(...after.map((x) => x.n)) > countBefore,
        `web-2's counter went on: ${Math.min(...after.map((x) => x.n))} on the destination after ${countBefore}`,
      );
      // PV: restarted (same UUID, counter starts over) on the other host.
      const pv = await waitPhase("legacy-1", "Running", 3 * MIN, dest.name);
      assert.equal(pv.status?.uuid, pvBefore.status?.uuid, "same identity");
      await dest.waitConsole(LabHost.guestLine(xlName("legacy-1"), "kubexen-guest alive 0$"), BOOT_MS, destLine);
      assert.equal((await onHost(dest, pv.status?.uuid ?? "")).length, 1);
      assert.deepEqual(
        mt?.status?.restartedDomains?.map((x) => x.name),
        ["legacy-1"],
        "the maintenance records the restart",
      );
      // Deleting the maintenance ends it (its finalizer opens the host again).
      await client.delete(resources.xenMaintenances, `${host.name}-bios`);
      await until(
        "maintenance gone",
        async () => !(await client.getOrUndefined(resources.xenMaintenances, `${host.name}-bios`)),
        2 * MIN,
        1000,
      );
      assert.notEqual((await client.get<XenHost>(resources.xenHosts, host.name)).spec?.unschedulable, true);
      web = { name: "web-2", uuid: fresh.web2, host: dest.name, domid: w.status?.domid ?? 0 };
    },
  );

  scenario("5. deleting a XenDomain destroys it; a domain made by hand with xl is an orphan, left alone", async () => {
    const pv = await xd("legacy-1");
    await client.delete(resources.xenDomains, "legacy-1", NS);
    await until(
      "legacy-1 gone from the API",
      async () => !(await client.getOrUndefined(resources.xenDomains, "legacy-1", NS)),
      3 * MIN,
      1000,
    );
    assert.equal((await onHost(lab.host(pv.status?.host ?? ""), pv.status?.uuid ?? "")).length, 0, "destroyed");
    // By hand, as an administrator would, on the host the maintenance emptied.
    const host = other(web.host);
    const uuid = "6b1e0c4d-9a2f-4e3b-8c7d-1f2e3a4b5c6d";
    await host.execOk(`cat > /tmp/byhand.cfg <<EOF
name = "byhand"
uuid = "${uuid}"
type = "pvh"
kernel = "/guest/vmlinuz"
ramdisk = "/guest/initrd"
extra = "console=hvc0"
memory = 128
vcpus = 1
EOF
xl create /tmp/byhand.cfg`);
    await until(
      "byhand reported as an orphan",
      async () => {
        const h = await client.get<XenHost>(resources.xenHosts, host.name);
        return (h.status?.orphans ?? []).some((o) => o.uuid === uuid && o.name === "byhand");
      },
      2 * MIN,
      2000,
    );
    // The event follows the status write that reported the orphan.
    await until(
      "an OrphanDomain event names byhand",
      async () =>
        /byhand/.test(
          await cp.kubectlOk(["get", "events", "-A", "--field-selector", "reason=OrphanDomain", "-o", "json"]),
        ),
      MIN,
      2000,
    );
    // Left alone: still there, same domid, after more reports.
    const rec = await onHost(host, uuid);
    await new Promise((r) => setTimeout(r, 20_000));
    assert.deepEqual(
      (await onHost(host, uuid)).map((r) => r.domid),
      rec.map((r) => r.domid),
    );
    await host.execOk("xl destroy byhand");
  });

  scenario("6. a restarted agent adopts its running domains without restarting them", async () => {
    const host = lab.host(web.host);
    const before = (await onHost(host, web.uuid))[0];
    assert.ok(before, `${web.name} runs there`);
    const from = host.console.length;
    const restartedAt = Date.now();
    await host.execOk("pkill -TERM -f node-agent/src/main.ts");
    await host.waitConsole(/kubexen-lab: starting the node agent/, 2 * MIN, from);
    await host.waitConsole(/node agent started/, 3 * MIN, from);
    await lab.waitReady(cp, host.name, 3 * MIN);
    // Give the new agent a few reconciles and host reports.
    await new Promise((r) => setTimeout(r, 20_000));
    const after = (await onHost(host, web.uuid))[0];
    assert.equal(after?.domid, before.domid, "same domid: not restarted");
    const d = await xd(web.name);
    assert.equal(d.status?.phase, "Running");
    assert.equal(d.status?.domid, before.domid);
    // The counter did not start over.
    const since = host.guestCounter(xlName(web.name)).filter((x) => x.t >= restartedAt);
    assert.ok(since.length > 0 && since.every((x) => x.n > 5), "the guest kept counting");
  });

  scenario(
    "7. a host cut off the control plane fences itself; its domain restarts elsewhere, never on both",
    async () => {
      const victim = lab.host(web.host);
      const survivor = other(web.host);
      const name = xlName(web.name);
      // xl's records on both hosts, every few seconds, until the end.
      const seen: Array<{ t: number; host: string; present: boolean }> = [];
      let polling = true;
      const poll = (async () => {
        while (polling) {
          for (const h of [victim, survivor]) {
            if (!h.running) continue;
            const recs = await onHost(h, web.uuid, 10_000).catch(() => undefined);
            if (recs) seen.push({ t: Date.now(), host: h.name, present: recs.length > 0 });
          }
          await new Promise((r) => setTimeout(r, 2000));
        }
      })();
      await until("polled both", () => seen.some((s) => s.host === victim.name && s.present));
      const cutAt = Date.now();
      const survivorFrom = survivor.console.length;
      await victim.setControlPlaneLink(false);
      // The host resets through Xen's watchdog: Xen reboots and QEMU (-no-reboot) exits.
      const exit = await Promise.race([
        victim.exited.then(() => Date.now()),
        new Promise<number>((r) => setTimeout(() => r(0), 5 * MIN)),
      ]);
      assert.ok(exit > 0, `${victim.name} did not reset within 5 minutes of the cut`);
      assert.ok(
        victim.console.some((l) => /[Ww]atchdog/.test(l.text) && l.t >= cutAt),
        "Xen's console names the watchdog as the reason",
      );
      const d = await waitPhase(web.name, "Running", 5 * MIN, survivor.name);
      polling = false;
      await poll;
      assert.equal(d.status?.uuid, web.uuid, "same identity");
      // Never on both: the last sign of life on the victim precedes the first on the survivor.
      const lastOld = Math.max(
        ...victim.guestCounter(name).map((x) => x.t),
        ...seen.filter((s) => s.host === victim.name && s.present).map((s) => s.t),
      );
      await survivor.waitConsole(LabHost.guestLine(name, "kubexen-guest alive 0$"), BOOT_MS, survivorFrom);
      const firstNew = Math.min(
        ...survivor
          .guestCounter(name)
          .filter((x) => x.t > cutAt)
          .map((x) => x.t),
        ...seen.filter((s) => s.host === survivor.name && s.present && s.t > cutAt).map((s) => s.t),
      );
      assert.ok(lastOld < exit, "the victim ran it until it reset");
      assert.ok(
        firstNew > exit,
        `restarted at ${new Date(firstNew).toISOString()}, after the reset at ${new Date(exit).toISOString()}`,
      );
      // After the fence window, not before.
      assert.ok(firstNew - cutAt >= (FENCE.fenceTimeout + FENCE.watchdogTimeout) * 1000 - FENCE.heartbeat * 1000);
      const h = await client.get<XenHost>(resources.xenHosts, victim.name);
      assert.equal(h.status?.conditions?.find((c) => c.type === "Fenced")?.status, "True");
    },
  );
});
