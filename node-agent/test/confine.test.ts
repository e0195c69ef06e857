// The agent's own check of the dom0 resources a domain names: every path by
// where it resolves, the bootloader, the bridges. Facts are given, so each
// trick (traversal, links out, prefixes, the roots themselves, relative paths,
// trailing slashes, /dev, an empty policy) is tried directly.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { XenDomainSpec } from "@kubexen/crds";
import {
  confine,
  DEFAULT_PATH_ROOTS,
  describeViolations,
  type HostPolicy,
  hostPathFields,
  inside,
  invalidBridge,
  invalidPciDevice,
  invalidRoot,
  lexical,
  type PathFacts,
  pathsToResolve,
  pciAllowed,
} from "../src/confine.ts";

const spec = (o: Partial<XenDomainSpec> = {}): XenDomainSpec => ({
  type: "pvh",
  vcpus: 1,
  memory: "128Mi",
  priority: 0,
  runStrategy: "Always",
  powerState: "Running",
  evictionStrategy: "LiveMigrate",
  terminationGracePeriodSeconds: 60,
  ...o,
});
/** Whatever the CRD allows, the agent checks the value it is given. */
type Bootloader = NonNullable<NonNullable<XenDomainSpec["boot"]>["bootloader"]>;
const disk = (source: string) => ({ vdev: "xvda", source, format: "raw", access: "rw", devtype: "disk" }) as const;
const POLICY: HostPolicy = {
  pathRoots: ["/var/lib/kubexen/images", "/var/lib/xen/images", "/dev/vg0"],
  bridges: ["xenbr0"],
};

/** Facts where every path resolves to itself (normalised) and is no device, except the given ones. */
function facts(s: XenDomainSpec, p: HostPolicy, given: Record<string, PathFacts> = {}): Map<string, PathFacts> {
  const m = new Map<string, PathFacts>();
  for (const path of pathsToResolve(s, p)) m.set(path, given[path] ?? { resolved: lexical(path), blockDevice: false });
  return m;
}
const check = (s: XenDomainSpec, p: HostPolicy = POLICY, given: Record<string, PathFacts> = {}) =>
  confine({ spec: s, policy: p, facts: facts(s, p, given) });
const kernel = (path: string, given: Record<string, PathFacts> = {}, p: HostPolicy = POLICY) =>
  check(spec({ boot: { kernel: path } }), p, given);
const ok = (v: unknown[], what: string) => assert.deepEqual(v, [], what);
const refused = (v: Array<{ field: string; message: string }>, field: string, re: RegExp, what: string) => {
  assert.equal(v.length, 1, `${what}: ${JSON.stringify(v)}`);
  assert.equal(v[0]?.field, field, what);
  assert.match(v[0]?.message ?? "", re, what);
};

describe("confine: paths", () => {
  it("lists every path that reaches xl, by field, and what to resolve", () => {
    const s = spec({
      boot: { kernel: "/k", ramdisk: "/r", bootloader: "pygrub" },
      disks: [disk("/a"), { ...disk("/b"), vdev: "xvdb" }],
    });
    assert.deepEqual(hostPathFields(s), [
      { field: "spec.boot.kernel", path: "/k" },
      { field: "spec.boot.ramdisk", path: "/r" },
      { field: "spec.disks[0].source", path: "/a" },
      { field: "spec.disks[1].source", path: "/b" },
    ]);
    const relative = spec({ boot: { kernel: "k" }, disks: [disk("/a")] });
    assert.deepEqual(pathsToResolve(relative, { pathRoots: ["/a", "/r"], bridges: [] }), ["/a", "/r"]);
  });

  it("allows paths that resolve strictly inside a root, at any depth", () => {
    ok(kernel("/var/lib/kubexen/images/vmlinuz"), "a file in a root");
    ok(kernel("/var/lib/xen/images/a/b/c.img"), "deeper");
    ok(kernel("/var/lib/xen/images/x/../c.img"), "a .. that stays inside");
    ok(kernel("/var/lib/xen/images//c.img"), "a doubled slash");
    ok(kernel("/var/lib/xen/images/./c.img"), "a dot segment");
    ok(kernel("/var/lib/xen/images/c.img/"), "a trailing slash");
    ok(kernel("/dev/vg0/web"), "a missing node in a /dev root is inside it (xl reports the missing file)");
  });

  it("refuses traversal out of a root", () => {
    for (const p of [
      "/var/lib/xen/images/../../../../etc/shadow",
      "/var/lib/xen/images/..",
      "/var/lib/xen/images/a/../../images2/x",
      "/var/lib/xen/images/../images2/x",
    ])
      refused(kernel(p), "spec.boot.kernel", /outside the allowed roots|allowed root itself/, p);
    refused(
      kernel("/var/lib/xen/images/../../../../etc/shadow"),
      "spec.boot.kernel",
      /^\/var\/lib\/xen\/images\/\.\.\/\.\.\/\.\.\/\.\.\/etc\/shadow resolves outside the allowed roots \(\/var\/lib\/kubexen\/images, \/var\/lib\/xen\/images, \/dev\/vg0\)$/,
      "the message names the path as written and the roots",
    );
  });

  it("judges by the resolved path: a link out is refused, a link in is allowed", () => {
    const out = kernel("/var/lib/xen/images/evil", {
      "/var/lib/xen/images/evil": { resolved: "/etc/shadow", blockDevice: false },
    });
    refused(out, "spec.boot.kernel", /^\/var\/lib\/xen\/images\/evil resolves outside the allowed roots/, "link out");
    assert.equal(out[0]?.resolved, "/etc/shadow", "the target is kept for the host's log");
    assert.doesNotMatch(out[0]?.message ?? "", /shadow/, "and not shown to the tenant");
    ok(
      kernel("/srv/k", { "/srv/k": { resolved: "/var/lib/kubexen/images/k", blockDevice: false } }),
      "a path outside whose link leads inside",
    );
    refused(
      kernel("/var/lib/xen/images/dir/x", {
        "/var/lib/xen/images/dir/x": { resolved: "/var/lib/xen/x", blockDevice: false },
      }),
      "spec.boot.kernel",
      /outside/,
      "a linked directory leading to the root's parent",
    );
  });

  it("compares segments, never string prefixes", () => {
    for (const p of [
      "/var/lib/xen/images2/x",
      "/var/lib/xen/imagesx",
      "/var/lib/xen/image",
      "/var/lib/kubexen/images.bak/k",
    ])
      refused(kernel(p), "spec.boot.kernel", /outside the allowed roots/, p);
    assert.equal(inside("/var/lib/xen/images2/x", "/var/lib/xen/images"), false);
    assert.equal(inside("/var/lib/xen/images/x", "/var/lib/xen/images/"), true, "a root written with a slash");
    assert.equal(inside("/a/b", "/a/b"), false);
    assert.equal(inside("/a", "/a/b"), false);
  });

  it("refuses a root itself, however it is written", () => {
    for (const p of [
      "/var/lib/xen/images",
      "/var/lib/xen/images/",
      "/var/lib/xen/images/.",
      "/var/lib/xen//images",
      "/dev/vg0",
    ])
      refused(kernel(p), "spec.boot.kernel", /is an allowed root itself/, p);
    refused(
      kernel("/srv/alias", { "/srv/alias": { resolved: "/var/lib/xen/images", blockDevice: false } }),
      "spec.boot.kernel",
      /allowed root itself/,
      "a link to a root",
    );
  });

  it("refuses relative paths without resolving them", () => {
    for (const p of ["vmlinuz", "var/lib/xen/images/a.img", "./a", "../etc/shadow", ""]) {
      const v = check(spec({ disks: [disk(p)] }));
      refused(v, "spec.disks[0].source", /is not an absolute path/, JSON.stringify(p));
    }
  });

  it("refuses a path it has no facts for, or that could not be resolved", () => {
    const s = spec({ boot: { kernel: "/var/lib/xen/images/k" } });
    refused(
      confine({ spec: s, policy: POLICY, facts: new Map() }),
      "spec.boot.kernel",
      /cannot be resolved/,
      "no facts",
    );
    refused(
      kernel("/var/lib/xen/images/loop", {
        "/var/lib/xen/images/loop": { error: "too many levels of symbolic links" },
      }),
      "spec.boot.kernel",
      /cannot be resolved on this host: too many levels/,
      "an error",
    );
  });

  it("uses the roots as they resolve, and a root that cannot be resolved allows nothing", () => {
    const p: HostPolicy = { pathRoots: ["/var/lib/xen/images"], bridges: [] };
    const linked = { "/var/lib/xen/images": { resolved: "/srv/images", blockDevice: false } };
    ok(
      kernel(
        "/var/lib/xen/images/a.img",
        { ...linked, "/var/lib/xen/images/a.img": { resolved: "/srv/images/a.img", blockDevice: false } },
        p,
      ),
      "a root that is a link",
    );
    refused(
      kernel("/var/lib/xen/images/a.img", { "/var/lib/xen/images": { error: "permission denied" } }, p),
      "spec.boot.kernel",
      /outside/,
      "unresolvable root",
    );
  });

  it("refuses every path under an empty policy", () => {
    const none: HostPolicy = { pathRoots: [], bridges: [] };
    refused(
      kernel("/var/lib/xen/images/a.img", {}, none),
      "spec.boot.kernel",
      /outside the allowed roots \(none\)$/,
      "no roots",
    );
    const v = check(spec({ networks: [{ bridge: "xenbr0" }] }), none);
    refused(v, "spec.networks[0].bridge", /^xenbr0 is not an allowed bridge \(none\)$/, "no bridges");
    ok(check(spec(), none), "a domain with no paths and no networks");
  });
});

describe("confine: /dev", () => {
  const dm = (path: string, resolved: string, blockDevice = true) =>
    kernel(path, { [path]: { resolved, blockDevice } });

  it("allows a link inside a /dev root to a block device directly under /dev (udev's LVM links)", () => {
    ok(dm("/dev/vg0/web", "/dev/dm-3"), "/dev/vg0/web -> /dev/dm-3");
    ok(dm("/dev/vg0/web", "/dev/sdb"), "to a disk");
    ok(dm("/dev/vg0//web", "/dev/dm-3"), "written with a doubled slash");
  });

  it("refuses anything else under /dev", () => {
    for (const [path, resolved, block, why] of [
      ["/dev/vg0/web", "/dev/mem", false, "a character device"],
      ["/dev/vg0/web", "/dev/mapper/x", true, "a block device deeper than /dev"],
      ["/dev/vg0/web", "/etc/shadow", false, "a file"],
      ["/dev/vg0/web", "/var/lib/x/y", true, "a block device outside /dev"],
      ["/dev/vg0/../sda", "/dev/sda", true, "traversal to a disk"],
      ["/dev/vg0/x/../../sda", "/dev/sda", true, "traversal through a name"],
      ["/dev/vg0x/web", "/dev/dm-3", true, "a prefix of the root"],
      ["/dev/sda", "/dev/sda", true, "a disk outside the root"],
      ["/dev/vg1/web", "/dev/dm-3", true, "another volume group"],
      ["/dev/vg0", "/dev/vg0", false, "the root itself"],
    ] as const)
      assert.equal(dm(path, resolved, block).length, 1, `${why}: ${path} -> ${resolved}`);
  });

  it("applies the carve-out only to roots under /dev", () => {
    const p: HostPolicy = { pathRoots: ["/var/lib/xen/images"], bridges: [] };
    const v = kernel(
      "/var/lib/xen/images/disk",
      { "/var/lib/xen/images/disk": { resolved: "/dev/sda", blockDevice: true } },
      p,
    );
    refused(v, "spec.boot.kernel", /outside/, "an image root's link to a disk");
    const dev: HostPolicy = { pathRoots: ["/dev"], bridges: [] };
    ok(
      kernel("/dev/sda", { "/dev/sda": { resolved: "/dev/sda", blockDevice: true } }, dev),
      "an administrator who allows all of /dev",
    );
  });
});

describe("confine: bootloader and bridges", () => {
  it("allows only pygrub as a bootloader", () => {
    ok(check(spec({ type: "pv", boot: { bootloader: "pygrub" } })), "pygrub");
    for (const b of ["/bin/sh", "/usr/lib/xen/bin/pygrub", "pygrub ", "pygrub;id", "PYGRUB", "", "../pygrub"])
      refused(
        check(spec({ type: "pv", boot: { bootloader: b as Bootloader } })),
        "spec.boot.bootloader",
        /is not allowed \(only pygrub\)/,
        JSON.stringify(b),
      );
  });

  it("allows only the listed bridges, and names each interface refused", () => {
    const p: HostPolicy = { pathRoots: [], bridges: ["xenbr0", "xenbr1"] };
    ok(check(spec({ networks: [{ bridge: "xenbr0" }, { bridge: "xenbr1" }] }), p), "both listed");
    const v = check(spec({ networks: [{ bridge: "xenbr0" }, { bridge: "mgmt0" }, { bridge: "xenbr10" }] }), p);
    assert.deepEqual(
      v.map((x) => [x.field, x.message]),
      [
        ["spec.networks[1].bridge", "mgmt0 is not an allowed bridge (xenbr0, xenbr1)"],
        ["spec.networks[2].bridge", "xenbr10 is not an allowed bridge (xenbr0, xenbr1)"],
      ],
    );
  });
});

describe("confine: PCI passthrough", () => {
  it("passes through no device unless the host lists it, and names each one refused", () => {
    const gpu = "0000:03:00.0";
    const v = check(spec({ pciDevices: [gpu] }));
    refused(
      v,
      "spec.pciDevices[0]",
      /^0000:03:00\.0 is not a PCI device this host passes through \(none\)$/,
      "default",
    );
    const p: HostPolicy = { ...POLICY, pciDevices: ["0000:03:00.0", "0000:04:00.1"] };
    ok(check(spec({ pciDevices: [gpu, "0000:04:00.1"] }), p), "both listed");
    ok(
      check(spec({ pciDevices: ["0000:03:00.0".toUpperCase()] }), { ...p, pciDevices: ["0000:03:00.0"] }),
      "any hex case",
    );
    assert.deepEqual(
      check(spec({ pciDevices: [gpu, "0000:00:1f.2", "0000:04:00.2"] }), p).map((x) => [x.field, x.message]),
      [
        [
          "spec.pciDevices[1]",
          "0000:00:1f.2 is not a PCI device this host passes through (0000:03:00.0, 0000:04:00.1)",
        ],
        [
          "spec.pciDevices[2]",
          "0000:04:00.2 is not a PCI device this host passes through (0000:03:00.0, 0000:04:00.1)",
        ],
      ],
    );
    assert.ok(pciAllowed("0000:0A:00.0", ["0000:0a:00.0"]));
    assert.ok(!pciAllowed("0000:0a:00.1", ["0000:0a:00.0"]));
  });

  it("takes PCI addresses only from the command line", () => {
    for (const d of ["0000:03:00.0", "abcd:ef:1f.7"]) assert.equal(invalidPciDevice(d), undefined, d);
    for (const d of ["03:00.0", "0000:03:00.8", "0000:03:00", "0000:03:00.0,rdm=strict", ""])
      assert.match(invalidPciDevice(d) ?? "", /not a PCI address/, d);
  });
});

describe("confine: the report", () => {
  it("names every offending field, in one line", () => {
    const s = spec({
      type: "pv",
      boot: { kernel: "/etc/shadow", ramdisk: "/var/lib/kubexen/images/initrd", bootloader: "/bin/sh" as Bootloader },
      disks: [
        disk("/dev/sda"),
        { ...disk("/etc/shadow"), vdev: "xvdb" },
        { ...disk("/var/lib/xen/images/ok.img"), vdev: "xvdc" },
      ],
      networks: [{ bridge: "xenbr0" }, { bridge: "br-storage" }],
    });
    const p: HostPolicy = { pathRoots: DEFAULT_PATH_ROOTS, bridges: ["xenbr0"] };
    const v = check(s, p, { "/dev/sda": { resolved: "/dev/sda", blockDevice: true } });
    assert.deepEqual(
      v.map((x) => x.field),
      [
        "spec.boot.bootloader",
        "spec.boot.kernel",
        "spec.disks[0].source",
        "spec.disks[1].source",
        "spec.networks[1].bridge",
      ],
    );
    assert.equal(
      describeViolations(v),
      "spec.boot.bootloader: /bin/sh is not allowed (only pygrub); " +
        "spec.boot.kernel: /etc/shadow resolves outside the allowed roots (/var/lib/kubexen/images, /var/lib/xen/images); " +
        "spec.disks[0].source: /dev/sda resolves outside the allowed roots (/var/lib/kubexen/images, /var/lib/xen/images); " +
        "spec.disks[1].source: /etc/shadow resolves outside the allowed roots (/var/lib/kubexen/images, /var/lib/xen/images); " +
        "spec.networks[1].bridge: br-storage is not an allowed bridge (xenbr0)",
    );
  });
});

describe("confine: the command line's roots and bridges", () => {
  it("takes absolute, normalised roots other than /", () => {
    for (const r of ["/var/lib/xen/images", "/dev/vg0", "/srv/x.y+z"]) assert.equal(invalidRoot(r), undefined, r);
    for (const [r, re] of [
      ["var/lib", /not an absolute path/],
      ["/var/lib/", /not normalised \(write \/var\/lib\)/],
      ["/var//lib", /not normalised/],
      ["/var/lib/../etc", /not normalised \(write \/var\/etc\)/],
      ["/var/./lib", /not normalised/],
      ["/", /every file/],
      ["", /not an absolute path/],
    ] as const)
      assert.match(invalidRoot(r) ?? "", re, r);
  });

  it("takes bridge names only", () => {
    for (const b of ["xenbr0", "br-ex.100", "a_b"]) assert.equal(invalidBridge(b), undefined, b);
    for (const b of ["", "a b", "x".repeat(16), "br/0", "br0;id"])
      assert.match(invalidBridge(b) ?? "", /not a bridge name/, b);
  });
});
