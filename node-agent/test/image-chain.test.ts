// Backing files named inside disk images, on real images made by qemu-img:
// the header parser reads what QEMU would open, and the agent refuses a disk
// whose image (or any image down its chain) opens a file outside the roots,
// however the name is written (absolute, relative with .., through a link,
// through a protocol), and a differencing VHD.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { XenDomainSpec } from "@kubexen/crds";
import type { HostPolicy } from "../src/confine.ts";
import { backingPath, HEADER_BYTES, probeFormat, readBacking } from "../src/image-header.ts";
import { hostResourceViolations, imageChain } from "../src/paths.ts";

const qemuImg = (...args: string[]) => execFileSync("qemu-img", args, { stdio: ["ignore", "pipe", "pipe"] });
const head = (f: string) => readFileSync(f).subarray(0, HEADER_BYTES);
const footer = (f: string) => {
  const b = readFileSync(f);
  return b.subarray(b.length - 512);
};

describe("disk image headers and backing chains", () => {
  let dir: string;
  let root: string;
  let outside: string;
  let policy: HostPolicy;
  const spec = (source: string, format: "qcow2" | "qcow" | "vhd" | "raw" = "qcow2"): XenDomainSpec => ({
    type: "pvh",
    vcpus: 1,
    memory: "128Mi",
    priority: 0,
    runStrategy: "Always",
    powerState: "Running",
    evictionStrategy: "LiveMigrate",
    terminationGracePeriodSeconds: 60,
    boot: { kernel: join(root, "vmlinuz") },
    disks: [{ vdev: "xvda", source, format, access: "rw", devtype: "disk" }],
  });

  before(() => {
    // Resolved: the agent compares real paths, and tmpdir may be a link.
    dir = realpathSync(mkdtempSync(join(tmpdir(), "kubexen-images-")));
    root = join(dir, "images");
    outside = join(dir, "secret");
    mkdirSync(root);
    mkdirSync(outside);
    writeFileSync(join(root, "vmlinuz"), "kernel");
    writeFileSync(join(outside, "host-disk"), Buffer.alloc(1 << 20));
    qemuImg("create", "-q", "-f", "raw", join(root, "base.raw"), "1M");
    policy = { pathRoots: [root], bridges: [] };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reads no backing file in a plain qcow2, qcow or vhd, and the backing file of an overlay", () => {
    qemuImg("create", "-q", "-f", "qcow2", join(root, "plain.qcow2"), "1M");
    qemuImg("create", "-q", "-f", "qcow", join(root, "plain.qcow"), "1M");
    qemuImg("create", "-q", "-f", "vpc", join(root, "plain.vhd"), "1M");
    for (const [f, fmt] of [
      ["plain.qcow2", "qcow2"],
      ["plain.qcow", "qcow"],
      ["plain.vhd", "vhd"],
    ] as const) {
      const p = join(root, f);
      assert.equal(probeFormat(head(p)), fmt, f);
      assert.deepEqual(readBacking(fmt, head(p), footer(p)), { kind: "none" }, f);
    }
    qemuImg("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", join(root, "overlay.qcow2"));
    const p = join(root, "overlay.qcow2");
    const ref = readBacking("qcow2", head(p));
    assert.equal(ref.kind, "name");
    if (ref.kind === "name")
      assert.equal(
        readFileSync(p)
          .subarray(ref.offset, ref.offset + ref.length)
          .toString(),
        "base.raw",
      );
    assert.equal(probeFormat(head(join(root, "base.raw"))), undefined, "raw has no magic");
    assert.deepEqual(readBacking("qcow2", Buffer.from("not an image at all, but long enough to read")), {
      kind: "refused",
      why: "not a qcow2 image (no QFI magic)",
    });
  });

  it("resolves backing names as QEMU does, and refuses protocols", () => {
    assert.deepEqual(backingPath("/r/a/x.qcow2", "base.raw"), { path: "/r/a/base.raw" });
    assert.deepEqual(backingPath("/r/a/x.qcow2", "../../etc/shadow"), { path: "/r/a/../../etc/shadow" });
    assert.deepEqual(backingPath("/r/a/x.qcow2", "/etc/shadow"), { path: "/etc/shadow" });
    for (const n of ["nbd://127.0.0.1:10809/x", 'json:{"file.driver":"file"}', "file:/etc/shadow", "http://x/y"])
      assert.ok("refused" in backingPath("/r/x.qcow2", n), n);
  });

  it("admits an overlay whose whole chain stays inside the roots", async () => {
    qemuImg("create", "-q", "-f", "qcow2", "-b", "overlay.qcow2", "-F", "qcow2", join(root, "top.qcow2"));
    const chain = await imageChain(join(root, "top.qcow2"), "qcow2");
    assert.ok(!("error" in chain));
    if (!("error" in chain))
      assert.deepEqual(
        chain.files.map((f) => f.name),
        ["overlay.qcow2", "base.raw"],
      );
    assert.deepEqual(await hostResourceViolations(spec(join(root, "top.qcow2")), policy), []);
  });

  it("refuses an image that opens a file outside the roots, however it names it", async () => {
    const cases: Array<[string, string[]]> = [
      ["absolute.qcow2", ["-b", join(outside, "host-disk"), "-F", "raw"]],
      ["relative.qcow2", ["-b", "../secret/host-disk", "-F", "raw"]],
      ["protocol.qcow2", ["-u", "-b", "nbd://127.0.0.1:10809/export", "-F", "raw"]],
    ];
    symlinkSync(join(outside, "host-disk"), join(root, "innocent.raw"));
    cases.push(["via-link.qcow2", ["-b", "innocent.raw", "-F", "raw"]]);
    // Down the chain: an image inside the roots backed by one that escapes.
    cases.push(["deep.qcow2", ["-b", "absolute.qcow2", "-F", "qcow2"]]);
    for (const [name, args] of cases) {
      // Unsafe (-u) creation opens no backing file, so the size must be given.
      qemuImg("create", "-q", "-f", "qcow2", ...args, join(root, name), ...(args.includes("-u") ? ["1M"] : []));
      const v = await hostResourceViolations(spec(join(root, name)), policy);
      assert.equal(v.length, 1, `${name}: ${JSON.stringify(v)}`);
      assert.equal(v[0]?.field, "spec.disks[0].source", name);
      assert.match(
        v[0]?.message ?? "",
        name === "protocol.qcow2"
          ? /names a backing file through a protocol \(nbd:\)/
          : /names a backing file .* that resolves outside the allowed roots/,
        name,
      );
      // The tenant learns the name it wrote is refused, not where a link really leads.
      if (name === "via-link.qcow2") {
        assert.match(v[0]?.message ?? "", /names a backing file innocent\.raw/);
        assert.doesNotMatch(v[0]?.message ?? "", /secret/, "the resolved target stays in the agent's log");
        assert.equal(v[0]?.resolved, join(outside, "host-disk"));
      }
    }
    // Declared raw, the same file is opened raw: nothing in it is followed.
    assert.deepEqual(await hostResourceViolations(spec(join(root, "absolute.qcow2"), "raw"), policy), []);
  });

  it("refuses a differencing VHD, which opens its parent", async () => {
    const p = join(root, "child.vhd");
    qemuImg("create", "-q", "-f", "vpc", p, "1M");
    // qemu-img makes no differencing VHDs: mark a dynamic one as such (disk type 4) in both copies.
    const b = readFileSync(p);
    b.writeUInt32BE(4, 60);
    b.writeUInt32BE(4, b.length - 512 + 60);
    writeFileSync(p, b);
    const v = await hostResourceViolations(spec(p, "vhd"), policy);
    assert.equal(v.length, 1);
    assert.match(v[0]?.message ?? "", /a differencing VHD opens its parent image/);
  });

  it("reads nothing of an image outside the roots (the path alone refuses it)", async () => {
    qemuImg("create", "-q", "-f", "qcow2", join(outside, "x.qcow2"), "1M");
    const v = await hostResourceViolations(spec(join(outside, "x.qcow2")), policy);
    assert.deepEqual(
      v.map((x) => x.message),
      [`${join(outside, "x.qcow2")} resolves outside the allowed roots (${root})`],
    );
  });
});
