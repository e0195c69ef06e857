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

  it("rejects allowed path roots that are not absolute and normalised, and bad bridge names, naming the flag", () => {
    for (const [args, message] of [
      [
        ["--allowed-path-root", "var/lib/xen/images"],
        /--allowed-path-root var\/lib\/xen\/images is not an absolute path/,
      ],
      [
        ["--allowed-path-root", "/var/lib/xen/images/"],
        /--allowed-path-root \/var\/lib\/xen\/images\/ is not normalised/,
      ],
      [
        ["--allowed-path-root", "/var/lib/kubexen/images", "--allowed-path-root", "/var/lib/xen/../../etc"],
        /--allowed-path-root \/var\/lib\/xen\/\.\.\/\.\.\/etc is not normalised \(write \/var\/etc\)/,
      ],
      [["--allowed-path-root", "/"], /--allowed-path-root \/ would allow every file/],
      [["--allowed-bridge", "br 0"], /--allowed-bridge br 0 is not a bridge name/],
    ] as const) {
      const r = run(...args);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });
});
