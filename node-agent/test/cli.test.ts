// The agent's command line: a bad flag stops it before it touches anything, naming the flag.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";

const MAIN = join(import.meta.dirname, "../src/main.ts");
const run = (...args: string[]) =>
  spawnSync(process.execPath, [MAIN, "--host", "x1", "--driver", "sim", ...args], {
    encoding: "utf8",
    timeout: 30_000,
  });

describe("node agent command line", () => {
  it("rejects intervals out of range with exit 2 and the flag's name", () => {
    for (const [flag, value, message] of [
      ["--cpu-report-interval", "5", /--cpu-report-interval is at least 10 seconds/],
      ["--lease-duration", "1", /--lease-duration is at least 2 seconds/],
      ["--heartbeat-interval", "soon", /heartbeatInterval/],
    ] as const) {
      const r = run(flag, value);
      assert.equal(r.status, 2, `${flag} ${value}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });
});
