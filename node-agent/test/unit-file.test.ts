// The standalone unit (deploy/kubexen-node-agent.service): what its domains and its restarts rely
// on, and systemd's own verdict on it where systemd-analyze is installed. The lab runs it for real
// (e2e/test/xenlab.test.ts, scenarios 6a and 6b).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const path = fileURLToPath(new URL("../deploy/kubexen-node-agent.service", import.meta.url));
const text = readFileSync(path, "utf8");

/** Each section's settings, continuation lines joined, comments left out. */
function parse(unit: string): Record<string, Array<[string, string]>> {
  const out: Record<string, Array<[string, string]>> = {};
  let section = "";
  const lines = unit.replace(/\\\n\s*/g, " ").split("\n");
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s?.[1]) {
      section = s[1];
      out[section] = [];
      continue;
    }
    const i = line.indexOf("=");
    out[section]?.push([line.slice(0, i), line.slice(i + 1)]);
  }
  return out;
}

const unit = parse(text);
const get = (section: string, key: string) => (unit[section] ?? []).filter(([k]) => k === key).map(([, v]) => v);

describe("the standalone unit", () => {
  it("kills only the agent's own processes when it stops: the domains' are in their scopes", () => {
    // control-group (the default) or nothing: KillMode=process or none would leave the agent's
    // children (an xl migrate and its transport) behind.
    assert.deepEqual(
      get("Service", "KillMode").filter((v) => v !== "control-group"),
      [],
    );
    assert.match(text, /kubexen-domain-<uuid>-\*\.scope/, "the reason is written down");
  });

  it("restarts a crashed agent soon, and always: the watchdog it left armed is counting", () => {
    assert.deepEqual(get("Service", "Restart"), ["always"]);
    const sec = Number(get("Service", "RestartSec")[0] ?? "0.1");
    assert.ok(sec <= 5, `RestartSec=${sec}: well under the default --watchdog-timeout of 30 s`);
    assert.deepEqual(get("Unit", "StartLimitIntervalSec"), ["0"]);
    assert.deepEqual(get("Service", "KillSignal"), ["SIGTERM"], "SIGTERM disarms the watchdog");
  });

  it("takes the host's settings from /etc/default/kubexen-node-agent, extra flags last", () => {
    assert.ok(get("Service", "Environment").includes("NODE_COMPILE_CACHE=/var/cache/kubexen/node-compile-cache"));
    assert.deepEqual(get("Service", "CacheDirectory"), ["kubexen"], "systemd makes the compile cache's directory");
    assert.deepEqual(get("Service", "EnvironmentFile"), ["-/etc/default/kubexen-node-agent"]);
    const exec = get("Service", "ExecStart")[0] ?? "";
    // Unbraced: systemd splits the value into words, one argument each.
    assert.match(exec, / \$KUBEXEN_AGENT_ARGS$/);
    assert.match(exec, /--migration-endpoint \$\{KUBEXEN_MIGRATION_ENDPOINT\}/);
    assert.match(exec, /--kubeconfig \/etc\/kubexen\/agent\.kubeconfig/);
  });

  it("wants Xen's daemons under Debian's name and upstream's, requires neither", () => {
    assert.deepEqual(get("Unit", "Requires"), []);
    const wants = get("Unit", "Wants").join(" ").split(/\s+/);
    for (const u of ["xen.service", "xenstored.service", "network-online.target"]) assert.ok(wants.includes(u), u);
    const after = get("Unit", "After").join(" ").split(/\s+/);
    for (const u of ["xen.service", "xenstored.service", "network-online.target"]) assert.ok(after.includes(u), u);
  });

  it("passes systemd-analyze verify (but for the node binary, absent here)", (t) => {
    const probe = spawnSync("systemd-analyze", ["--version"], { encoding: "utf8" });
    if (probe.status !== 0) return t.skip("systemd-analyze is not installed");
    const dir = mkdtempSync(join(tmpdir(), "unit-"));
    copyFileSync(path, join(dir, "kubexen-node-agent.service"));
    const r = spawnSync("systemd-analyze", ["verify", join(dir, "kubexen-node-agent.service")], {
      encoding: "utf8",
    });
    const complaints = `${r.stdout}${r.stderr}`
      .split("\n")
      .filter((l) => l.trim() && !/\/opt\/kubexen\/node_modules\/\.bin\/node is not executable/.test(l));
    assert.deepEqual(complaints, []);
  });
});
