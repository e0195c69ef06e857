// Leader election between separate processes on a real API server: a killed
// leader is replaced within 20 s, a leader that shuts down hands over at once,
// and at no moment do two processes lead.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { startCluster, until } from "./support.ts";

type Cluster = Awaited<ReturnType<typeof startCluster>>;
interface Line {
  ev: string;
  id: string;
  t: number;
}

const fixture = fileURLToPath(new URL("fixtures/candidate.ts", import.meta.url));

describe("leader election", () => {
  let c: Cluster;
  const lines: Line[] = [];
  const procs: ChildProcess[] = [];
  const candidate = (id: string): ChildProcess => {
    const p = spawn(process.execPath, [fixture, c.cp.kubeconfigPath, id], { stdio: ["ignore", "pipe", "inherit"] });
    let buf = "";
    p.stdout?.on("data", (d: Buffer) => {
      buf += d.toString();
      let i = buf.indexOf("\n");
      while (i >= 0) {
        lines.push(JSON.parse(buf.slice(0, i)) as Line);
        buf = buf.slice(i + 1);
        i = buf.indexOf("\n");
      }
    });
    procs.push(p);
    return p;
  };
  const seen = (ev: string, id: string) => lines.find((l) => l.ev === ev && l.id === id);

  before(async () => {
    c = await startCluster();
  });
  after(async () => {
    for (const p of procs) p.kill("SIGKILL");
    await c?.cp.stop();
  });

  it("hands over after the leader is killed, and at once after it shuts down, never with two leaders", async () => {
    const holders: Array<{ t: number; holder: string }> = [];
    const sampler = setInterval(() => {
      c.client
        .request<{ spec?: { holderIdentity?: string } }>(
          "GET",
          "/apis/coordination.k8s.io/v1/namespaces/default/leases/sdk-test-leader",
        )
        .then((l) => {
          const holder = l.spec?.holderIdentity ?? "";
          if (holders.at(-1)?.holder !== holder) holders.push({ t: Date.now(), holder });
        })
        .catch(() => {});
    }, 100);

    const a = candidate("a");
    await until("a leads", () => !!seen("start", "a"), 30_000);
    candidate("b");
    await until("b is up", () => !!seen("ready", "b"), 30_000);
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(seen("start", "b"), undefined, "b does not lead while a renews");

    const killedAt = Date.now();
    a.kill("SIGKILL");
    await until("b leads", () => !!seen("start", "b"), 30_000);
    const bStart = seen("start", "b")?.t ?? 0;
    assert.ok(bStart > killedAt, "b started leading after a died");
    assert.ok(bStart - killedAt < 20_000, `handover took ${bStart - killedAt} ms`);

    const cProc = candidate("c");
    await until("c is up", () => !!seen("ready", "c"), 30_000);
    const b = procs[1] as ChildProcess;
    const termAt = Date.now();
    b.kill("SIGTERM");
    await until("c leads", () => !!seen("start", "c"), 30_000);
    const cStart = seen("start", "c")?.t ?? 0;
    const bStop = seen("stop", "b")?.t ?? Number.POSITIVE_INFINITY;
    assert.ok(cStart >= bStop, "c started after b stopped");
    assert.ok(cStart - termAt < 6_000, `graceful handover took ${cStart - termAt} ms (lease released)`);
    await until("the lease shows c", () => holders.at(-1)?.holder === "c", 10_000);
    clearInterval(sampler);
    cProc.kill("SIGTERM");

    // The lease itself only ever passed a -> b -> (released) -> c.
    const seq = holders.map((h) => h.holder).filter((h) => h !== "");
    assert.deepEqual(seq, ["a", "b", "c"]);
    // Leadership intervals from the processes' own reports never overlap.
    const intervals = [
      { id: "a", from: seen("start", "a")?.t ?? 0, to: killedAt },
      { id: "b", from: bStart, to: bStop },
    ];
    assert.ok((intervals[0]?.to ?? 0) <= (intervals[1]?.from ?? 0));
    assert.ok((intervals[1]?.to ?? 0) <= cStart);
  });
});
