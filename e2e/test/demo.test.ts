// `npm run demo` as a user runs it (on sim hosts): the examples come up, web-1
// live-migrates, the closing tables print, and Ctrl-C stops everything.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { until } from "../src/wait.ts";

const demo = fileURLToPath(new URL("../src/demo.ts", import.meta.url));

describe("demo", () => {
  it("brings up the examples, migrates web-1, prints the tables and stops on SIGINT", async () => {
    const child = spawn(process.execPath, [demo], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, LOG_LEVEL: "error" },
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      out += c.toString();
    });
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    try {
      await until("the demo is up", () => out.includes("kubexen is up:") || child.exitCode !== null, 5 * 60_000, 200);
      assert.match(out, /kubexen is up: https:\/\/127\.0\.0\.1:\d+/, out);
      assert.match(out, /xendomain\/web-1: Running on xen-0\d/, out);
      assert.match(out, /xenmigration\/web-1-move: Succeeded \(xen-0\d -> xen-0\d\)/, out);
      assert.match(out, /moved \d+ MiB: \d+ MiB sent in \d+ rounds, downtime \d+ ms/, out);
      // The closing table of hosts: all three Ready.
      const hosts = out.split("\n").filter((l) => /^xen-0\d\s/.test(l));
      assert.equal(hosts.length, 3, out);
      assert.ok(
        hosts.every((l) => /\sTrue\s/.test(l)),
        hosts.join("\n"),
      );
    } finally {
      child.kill("SIGINT");
    }
    assert.equal(await exited, 0, out.slice(-2000));
    assert.match(out, /SIGINT: stopping the operator, the agents and the control plane/);
  });
});
