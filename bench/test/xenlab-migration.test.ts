// The real-Xen migration benchmark at its small size (one migration between two
// lab hosts), run with the lab tests: its capture must find the stream on the
// wire, in order, carrying at least what the agents counted.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runLabMigration } from "../src/lab-migration.ts";
import { machine } from "../src/machine.ts";
import { render } from "../src/report.ts";

const dir = join(import.meta.dirname, "../../test-artifacts/bench-xenlab-migration");

describe("xenlab: migration overhead on real Xen hosts", { timeout: 30 * 60_000 }, () => {
  it("sees each migration's stream on the wire, between its creation and its success", async () => {
    const r = await runLabMigration("small", dir);
    console.log(`lab-migration (${r.accel}): ${JSON.stringify(r.samples)}`);
    assert.equal(r.samples.length, 1);
    for (const s of r.samples) {
      assert.ok(s.toConnectMs > 0, `the stream opened ${s.toConnectMs} ms after the XenMigration`);
      assert.ok(s.toConnectionFirstByteMs >= s.toConnectMs, JSON.stringify(s));
      assert.ok(s.toFirstByteMs > s.toConnectionFirstByteMs, `xl's stream after the handshakes: ${JSON.stringify(s)}`);
      assert.ok(s.wireMs > 0 && s.afterLastByteMs > 0, JSON.stringify(s));
      assert.ok(s.totalMs > s.toFirstByteMs + s.wireMs, JSON.stringify(s));
      // The wire carries xl's stream inside TLS records: never less than the agent counted at its bridge.
      assert.ok(s.bytesTransferred >= 60 * 2 ** 20, `the agent counted ${s.bytesTransferred} bytes`);
      assert.ok(s.wireBytes >= s.bytesTransferred, `${s.wireBytes} bytes on the wire < ${s.bytesTransferred} sent`);
      assert.ok(s.wireBytes < s.bytesTransferred * 1.05, `${s.wireBytes} bytes on the wire for ${s.bytesTransferred}`);
    }
    const out = render({
      precopy: undefined,
      balance: undefined,
      migration: undefined,
      labMigration: { machine: machine(), size: "small", result: r },
      drain: undefined,
      scale: undefined,
    });
    const first = r.samples[0]?.toFirstByteMs.toFixed(0);
    assert.match(out.markdown, new RegExp(`\\| XenMigration created → first byte of xl's stream \\| ${first} \\|`));
    rmSync(dir, { recursive: true, force: true });
  });
});
