// Resolving a path on the host, on real directories with real symbolic links:
// links followed (absolute, relative, chained, dangling, in the middle), `..`
// after a link taken from the link's target as the kernel does, missing tails
// appended lexically, loops refused, block devices recognised.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { hostPathFacts, pathFacts, resolveHostPath } from "../src/paths.ts";

describe("resolving host paths", () => {
  let t: string;
  before(() => {
    // realpath: the temp directory itself may sit behind a link (macOS /var -> /private/var).
    t = realpathSync(mkdtempSync(join(tmpdir(), "kubexen-paths-")));
    mkdirSync(join(t, "root/sub"), { recursive: true });
    mkdirSync(join(t, "outside/deep"), { recursive: true });
    writeFileSync(join(t, "root/a.img"), "");
    writeFileSync(join(t, "outside/secret"), "");
    symlinkSync(join(t, "outside/secret"), join(t, "root/abs-out"));
    symlinkSync("../outside/secret", join(t, "root/rel-out"));
    symlinkSync("a.img", join(t, "root/rel-in"));
    symlinkSync("rel-out", join(t, "root/chain"));
    symlinkSync(join(t, "outside/deep"), join(t, "root/dirlink"));
    symlinkSync(join(t, "outside/not-yet"), join(t, "root/dangling"));
    symlinkSync("loop2", join(t, "root/loop1"));
    symlinkSync("loop1", join(t, "root/loop2"));
    symlinkSync("/etc/shadow", join(t, "root/shadow"));
  });
  after(() => rmSync(t, { recursive: true, force: true }));
  // Not join(): it would take `..` away lexically before the resolver sees it.
  const r = (p: string) => resolveHostPath(`${t}/${p}`);

  it("leaves a plain file and a link-free path as they are", async () => {
    assert.equal(await r("root/a.img"), join(t, "root/a.img"));
    assert.equal(await r("root/./sub/../a.img"), join(t, "root/a.img"));
    assert.equal(await resolveHostPath(`${t}//root///a.img/`), join(t, "root/a.img"));
  });

  it("follows absolute, relative and chained links, to wherever they lead", async () => {
    assert.equal(await r("root/abs-out"), join(t, "outside/secret"));
    assert.equal(await r("root/rel-out"), join(t, "outside/secret"));
    assert.equal(await r("root/rel-in"), join(t, "root/a.img"));
    assert.equal(await r("root/chain"), join(t, "outside/secret"));
    assert.equal(await r("root/shadow"), "/etc/shadow");
  });

  it("follows a link in the middle of a path, and takes `..` after it from the link's target", async () => {
    assert.equal(await r("root/dirlink/x.img"), join(t, "outside/deep/x.img"));
    // Lexically this is root/secret; the kernel goes to outside/deep/.. = outside.
    assert.equal(await r("root/dirlink/../secret"), join(t, "outside/secret"));
  });

  it("appends a missing tail lexically, `..` included", async () => {
    assert.equal(await r("root/missing/x.img"), join(t, "root/missing/x.img"));
    assert.equal(await r("root/missing/../../outside/secret"), join(t, "outside/secret"));
    assert.equal(await r("root/a.img/under-a-file"), join(t, "root/a.img/under-a-file"));
    assert.equal(await resolveHostPath("/nonexistent-kubexen/a/../../etc/shadow"), "/etc/shadow");
    assert.equal(await resolveHostPath("/../../etc/./shadow"), "/etc/shadow");
  });

  it("follows a dangling link to its missing target instead of taking the link for a missing file", async () => {
    assert.equal(await r("root/dangling"), join(t, "outside/not-yet"));
    assert.equal(await r("root/dangling/x"), join(t, "outside/not-yet/x"));
  });

  it("refuses link loops and relative paths", async () => {
    await assert.rejects(r("root/loop1"), /too many levels of symbolic links/);
    await assert.rejects(resolveHostPath("root/a.img"), /not an absolute path/);
    assert.match(((await pathFacts(join(t, "root/loop1"))) as { error: string }).error, /too many levels/);
  });

  it("tells block devices from everything else", async () => {
    assert.deepEqual(await pathFacts(join(t, "root/rel-in")), { resolved: join(t, "root/a.img"), blockDevice: false });
    assert.deepEqual(await pathFacts(join(t, "root/missing")), {
      resolved: join(t, "root/missing"),
      blockDevice: false,
    });
    assert.equal(((await pathFacts("/dev/null")) as { blockDevice: boolean }).blockDevice, false, "a character device");
    const block = ["/dev/loop0", "/dev/sda", "/dev/vda", "/dev/nvme0n1", "/dev/xvda"].find((p) => existsSync(p));
    if (block) assert.equal(((await pathFacts(block)) as { blockDevice: boolean }).blockDevice, true, block);
  });

  it("looks up many paths at once", async () => {
    const m = await hostPathFacts([join(t, "root/abs-out"), join(t, "root/a.img")]);
    assert.deepEqual(m.get(join(t, "root/abs-out")), { resolved: join(t, "outside/secret"), blockDevice: false });
    assert.equal(m.size, 2);
  });
});
