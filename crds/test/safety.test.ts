// What the schemas refuse on the TypeScript side (the API server's side is
// e2e/test/crds.test.ts), the balancer's deprecated mode, and generated YAML
// that reads the same to kubectl and helm (YAML 1.1) as to the schemas.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import {
  allCrds,
  BalancerModeSchema,
  crdName,
  effectiveBalancerMode,
  kinds,
  XenDomainSpecSchema,
} from "../src/index.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const base = { memory: "1Gi", boot: { kernel: "/var/lib/kubexen/images/vmlinuz" } };
const issues = (spec: object) => {
  const r = XenDomainSpecSchema.safeParse({ ...base, ...spec });
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
};

describe("strings that reach dom0", () => {
  it("takes only absolute paths of plain names for kernel, ramdisk and disk sources", () => {
    for (const ok of ["/var/lib/xen/images/web-1.img", "/dev/vg0/web_1", "/a/.b/..c/...d/e+f@g:h"]) {
      assert.deepEqual(issues({ boot: { kernel: ok, ramdisk: ok }, disks: [{ vdev: "xvda", source: ok }] }), [], ok);
    }
    for (const bad of [
      "vmlinuz",
      "/boot/../etc/shadow",
      "/boot/./x",
      "/..",
      "//boot/x",
      "/boot/",
      "/",
      "",
      "/boot/a b",
      "/boot/a,b",
      "/boot/a=b",
      '/boot/a"b',
      "/boot/a'b",
      "/boot/a\\b",
      "/boot/a#b",
      "/boot/a;b",
      "/boot/a\nb",
      "/boot/a\u0000b",
      "/boot/ü",
    ]) {
      assert.match(issues({ boot: { kernel: bad } }).join(), /^boot\.kernel: must be an absolute path/, bad);
      assert.match(
        issues({ disks: [{ vdev: "xvda", source: bad }] }).join(),
        /^disks\.0\.source: must be an absolute path/,
      );
    }
  });

  it("takes a kernel command line with quotes but no control characters", () => {
    assert.deepEqual(issues({ boot: { ...base.boot, cmdline: `root=/dev/xvda1 init="/sbin/init" x='y' ✓` } }), []);
    for (const c of ["\n", "\r", "\t", "\u0000", "\u007f", "\u0085"])
      assert.deepEqual(issues({ boot: { ...base.boot, cmdline: `quiet${c}` } }), [
        "boot.cmdline: must not contain control characters",
      ]);
  });

  it("takes pygrub as the only bootloader", () => {
    assert.deepEqual(issues({ type: "pv", boot: { bootloader: "pygrub" } }), []);
    for (const b of ["/usr/lib/xen/bin/pygrub", "/bin/sh", "pvgrub"])
      assert.match(issues({ type: "pv", boot: { bootloader: b } }).join(), /^boot\.bootloader: /);
  });

  it("takes dotted-quad IPv4 addresses only", () => {
    for (const ip of ["192.0.2.10", "0.0.0.0", "255.255.255.255"])
      assert.deepEqual(issues({ networks: [{ bridge: "xenbr0", ip }] }), [], ip);
    for (const ip of ["10.0.0.256", "10.0.0", "10.0.0.01", "web", "2001:db8::1", "1.2.3.4,mac=x", "1.2.3.4 "])
      assert.notDeepEqual(issues({ networks: [{ bridge: "xenbr0", ip }] }), [], ip);
  });

  it("takes bridge names Linux takes, none that reads as . .. or an option", () => {
    for (const bridge of ["xenbr0", "br-lan.10", "x"]) assert.deepEqual(issues({ networks: [{ bridge }] }), []);
    for (const bridge of [".", "..", "-br", "_br", "a b", "a/b", "abcdefghijklmnop"])
      assert.notDeepEqual(issues({ networks: [{ bridge }] }), [], bridge);
  });
});

describe("balancer modes", () => {
  it("takes Disabled, Recommend and Auto, and the deprecated Off as Disabled", () => {
    assert.deepEqual(BalancerModeSchema.options, ["Disabled", "Recommend", "Auto", "Off"]);
    assert.equal(effectiveBalancerMode("Off"), "Disabled");
    for (const m of ["Disabled", "Recommend", "Auto"] as const) assert.equal(effectiveBalancerMode(m), m);
  });

  it("has no mode YAML 1.1 reads as anything but its name", () => {
    for (const m of BalancerModeSchema.options.filter((m) => m !== "Off"))
      assert.equal(parse(`mode: ${m}`, { version: "1.1" }).mode, m);
  });
});

describe("generated CRDs read by YAML 1.1 (kubectl, helm)", () => {
  const crds = allCrds();
  for (const def of kinds) {
    for (const dir of ["crds/generated", "charts/kubexen/crds"]) {
      it(`${dir}/${crdName(def)}.yaml is the CRD the schemas make`, () => {
        const text = readFileSync(`${root}${dir}/${crdName(def)}.yaml`, "utf8");
        const crd = crds.find((c) => (c.metadata as { name: string }).name === crdName(def));
        assert.deepEqual(parse(text, { version: "1.1" }), JSON.parse(JSON.stringify(crd)));
      });
    }
  }
});
