// The Fencer's feeding of the watchdog, on the sim host's watchdog: fed while the heartbeat is
// fresh, starved once it is stale, and a stalled process is reported before it costs the host.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SimHypervisor } from "@kubexen/hypervisor";
import { createLogger } from "@kubexen/sdk";
import { Fencer, SimWatchdog } from "../src/index.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Blocks the event loop, as a synchronous call on a starved CPU would. */
const stall = (ms: number) => {
  const end = Date.now() + ms;
  while (Date.now() < end);
};

function setup(fenceTimeoutMs: number, watchdogTimeoutMs: number) {
  const sim = new SimHypervisor({ hostname: "xen-w", memoryMiB: 4096, files: [] });
  const lines: Array<{ level: number; msg: string; lateMs?: number }> = [];
  const log = createLogger("fence-test", "warn", { write: (l) => void lines.push(JSON.parse(l)) });
  const fencer = new Fencer({ fenceTimeoutMs, watchdogTimeoutMs, watchdog: new SimWatchdog(sim), log });
  return { sim, lines, fencer };
}

describe("Fencer", () => {
  it("feeds quietly while the heartbeat renews, and warns when a stall made it feed late", async () => {
    const { sim, lines, fencer } = setup(10_000, 2000);
    fencer.start();
    try {
      for (let i = 0; i < 6; i++) {
        await sleep(250);
        fencer.renewed();
      }
      assert.equal(lines.length, 0, `no warning while fed on time: ${JSON.stringify(lines)}`);
      stall(1200);
      await sleep(700);
      const late = lines.find((l) => /fed late/.test(l.msg));
      assert.ok(late, `a late-feed warning: ${JSON.stringify(lines)}`);
      assert.ok((late.lateMs ?? 0) >= 500, `lateMs ${late.lateMs}`);
      assert.equal(sim.watchdogResets, 0, "a stall shorter than the watchdog's timeout does not reset");
      assert.equal(fencer.isFenced, false);
    } finally {
      fencer.stop();
    }
  });

  it("starves the watchdog once the heartbeat is older than the fence timeout", async () => {
    const { sim, lines, fencer } = setup(600, 400);
    fencer.start();
    try {
      await sleep(300);
      assert.equal(fencer.isFenced, false);
      await sleep(1500);
      assert.equal(fencer.isFenced, true);
      assert.ok(lines.some((l) => l.level === 50 && /starving the watchdog/.test(l.msg)));
      assert.equal(sim.watchdogResets, 1, "the host reset once the starved watchdog expired");
    } finally {
      fencer.abandon();
    }
  });
});
