// xl.cfg as Xen itself reads it. XenDomain strings are a tenant's, so hostile:
// every config kubexen writes is read back by libxlutil (the parser xl uses),
// through test/libxlu/cfgdump.c compiled here against Debian's libxen-dev,
// disk and pci specs included; vif specs are split as xl splits them. A value
// is either refused with its XenDomain field named, or xl reads exactly the
// intended settings and nothing else. parseXlConfig is checked against
// libxlu on random files, so its round trips say what xl would read.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { type DomainConfig, HypervisorError } from "../src/index.ts";
import { emitXlConfig, parseXlConfig, toXlConfig, type XlConfig, type XlValue } from "../src/xl/config.ts";

// ---- libxlu, through cfgdump ------------------------------------------------------------------

const source = fileURLToPath(new URL("libxlu/cfgdump.c", import.meta.url));
const cache = join(tmpdir(), "kubexen-libxlu");

/** cfgdump compiled once per version of its source (about 0.3 s), cached under the temp dir. */
function cfgdump(): string {
  const hash = createHash("sha256").update(readFileSync(source)).digest("hex").slice(0, 16);
  const bin = join(cache, `cfgdump-${hash}`);
  if (existsSync(bin)) return bin;
  mkdirSync(cache, { recursive: true });
  const tmp = `${bin}.${process.pid}`;
  try {
    execFileSync("cc", ["-O1", "-Wall", "-Werror", "-o", tmp, source, "-lxlutil", "-lxenlight"], { stdio: "pipe" });
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString() ?? String(e);
    throw new Error(`cannot build ${source} (needs cc and libxen-dev, see scripts/apt-packages.txt):\n${stderr}`);
  }
  renameSync(tmp, bin);
  return bin;
}

interface Disk {
  rc: number;
  pdev_path: string | null;
  vdev: string | null;
  format: string;
  backend: string;
  backend_domname: string | null;
  script: string | null;
  readwrite: number;
  is_cdrom: number;
  removable: number;
  [k: string]: unknown;
}
interface Pci {
  rc: number;
  domain: number;
  bus: number;
  dev: number;
  func: number;
  [k: string]: unknown;
}
type Settings = Record<string, XlValue>;
type Dump =
  | { ok: true; settings: Settings; disk?: Disk[]; pci?: Pci[]; report: string }
  | { ok: false; errno: number; report: string };

// cfgdump prints each byte outside printable ASCII as \u00XX: back to bytes, then UTF-8 (strictly)
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const decode = (v: unknown): unknown =>
  typeof v === "string"
    ? utf8.decode(Buffer.from(v, "latin1"))
    : Array.isArray(v)
      ? v.map(decode)
      : v && typeof v === "object"
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [decode(k), decode(x)]))
        : v;

const work = mkdtempSync(join(tmpdir(), "kubexen-xlcfg-"));
after(() => rmSync(work, { recursive: true, force: true }));
let batch = 0;

/** What libxlu reads from each text, written to a file as the driver writes it (UTF-8). */
function libxlu(texts: string[]): Dump[] {
  const dir = join(work, String(batch++));
  mkdirSync(dir);
  const files = texts.map((t, i) => {
    const f = join(dir, `${i}.cfg`);
    writeFileSync(f, t);
    return f;
  });
  const out = execFileSync(cfgdump(), files, { maxBuffer: 1 << 28 }).toString("latin1");
  const lines = out.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, texts.length, "cfgdump printed one line per file");
  return lines.map((l) => decode(JSON.parse(l)) as Dump);
}

function ok(d: Dump | undefined, text: string): Extract<Dump, { ok: true }> {
  assert.ok(d?.ok, `libxlu refused:\n${text}\n${d && !d.ok ? d.report : ""}`);
  return d;
}

/**
 * A vif spec split as xl splits it (tools/xl/xl_parse.c, Xen 4.17, parse_config_data): strtok(buf, ",")
 * (so empty pieces vanish), then `while (*p == ' ') p++`, then parse_nic_config matches each piece with
 * MATCH_OPTION, a strncmp against "key=": the key is what precedes the first `=`, the value the rest.
 */
function xlVif(spec: string): [string, string | undefined][] {
  return spec
    .split(",")
    .filter((p) => p !== "")
    .map((p) => p.replace(/^ +/, ""))
    .map((p) => {
      const eq = p.indexOf("=");
      return eq < 0 ? [p, undefined] : [p.slice(0, eq), p.slice(eq + 1)];
    });
}

/** Everything xl takes from a config: the settings, with disk, pci and vif specs as xl parses them. */
function xlView(d: Extract<Dump, { ok: true }>) {
  const settings: Record<string, unknown> = { ...d.settings };
  if (d.disk) settings.disk = d.disk;
  if (d.pci) settings.pci = d.pci;
  if (Array.isArray(settings.vif)) settings.vif = (settings.vif as string[]).map(xlVif);
  return settings;
}

/** The settings libxlu keeps for a config: atoms as text, numbers in the decimal the emitter writes. */
const asText = (v: XlValue): XlValue => (Array.isArray(v) ? v.map(asText) : String(v));
const settingsOf = (cfg: XlConfig) => Object.fromEntries(Object.entries(cfg).map(([k, v]) => [k, asText(v)]));

// ---- the domain and its fields ----------------------------------------------------------------

const base: DomainConfig = {
  name: "tenant-a.web-1",
  uuid: "5c0e2a8b-1f3d-4d7e-9a44-0c2e6b1f7a10",
  macs: ["00:16:3e:2a:41:07", "00:16:3e:2a:41:08"],
  spec: {
    type: "hvm",
    vcpus: 2,
    maxVcpus: 4,
    memory: "512Mi",
    maxMemory: "1Gi",
    boot: {
      kernel: "/var/lib/kubexen/kernels/vmlinuz",
      ramdisk: "/var/lib/kubexen/kernels/initrd.img",
      cmdline: "console=hvc0 root=/dev/xvda1",
      bootloader: "pygrub",
      firmware: "uefi",
    },
    disks: [
      { vdev: "xvda", source: "/var/lib/xen/images/web-1.img", format: "qcow2", access: "rw", devtype: "disk" },
      { vdev: "hdc", source: "/iso/install.iso", format: "raw", access: "ro", devtype: "cdrom" },
    ],
    networks: [{ bridge: "xenbr0", ip: "10.0.0.2", model: "e1000", rateLimitMbps: 100 }, { bridge: "xenbr1" }],
    cpu: { pinning: "0-3,6", weight: 512, cap: 150 },
    pciDevices: ["0000:03:00.0"],
    priority: 0,
    runStrategy: "Always",
    powerState: "Running",
    evictionStrategy: "LiveMigrate",
    terminationGracePeriodSeconds: 60,
  },
};

type View = ReturnType<typeof xlView>;
interface Field {
  path: string;
  /** a valid value, to which hostile strings are also appended */
  valid: string;
  set(c: DomainConfig, v: string): void;
  /** the view xl should have when it reads the value v (the base's view with v in its place) */
  put(view: View, v: string): void;
}

const disk0 = (view: View) => (view.disk as Disk[])[0] as Disk;
const vif0 = (view: View) => (view.vif as [string, string | undefined][][])[0] as [string, string | undefined][];
const setPair = (pairs: [string, string | undefined][], k: string, v: string) => {
  const p = pairs.find(([key]) => key === k);
  assert.ok(p, `the base vif has ${k}`);
  p[1] = v;
};
/** Only the listed values may pass: anything else must be refused. */
const onlyValues = (allowed: string[]) => (_: View, v: string) => {
  assert.ok(allowed.includes(v), `accepted ${JSON.stringify(v)}`);
};

const fields: Field[] = [
  {
    path: "name",
    valid: base.name,
    set: (c, v) => {
      c.name = v;
    },
    put: (w, v) => {
      w.name = v;
    },
  },
  {
    path: "uuid",
    valid: base.uuid,
    set: (c, v) => {
      c.uuid = v;
    },
    put: (w, v) => {
      w.uuid = v;
    },
  },
  {
    path: "spec.type",
    valid: "hvm",
    set: (c, v) => {
      c.spec.type = v as "hvm";
    },
    put: onlyValues(["hvm"]),
  },
  ...(["kernel", "ramdisk", "cmdline", "bootloader"] as const).map(
    (k): Field => ({
      path: `spec.boot.${k}`,
      valid: base.spec.boot?.[k] ?? "",
      set: (c, v) => {
        (c.spec.boot ?? assert.fail())[k] = v as "pygrub";
      },
      // an empty one is no setting at all
      put: (w, v) => {
        if (v === "") delete w[k];
        else w[k] = v;
      },
    }),
  ),
  {
    path: "spec.disks[0].source",
    valid: "/var/lib/xen/images/web-1.img",
    set: (c, v) => {
      (c.spec.disks?.[0] ?? assert.fail()).source = v;
    },
    put: (w, v) => {
      disk0(w).pdev_path = v;
    },
  },
  {
    path: "spec.disks[0].vdev",
    valid: "xvda",
    set: (c, v) => {
      (c.spec.disks?.[0] ?? assert.fail()).vdev = v;
    },
    put: (w, v) => {
      disk0(w).vdev = v;
    },
  },
  {
    path: "spec.disks[0].format",
    valid: "qcow2",
    set: (c, v) => {
      (c.spec.disks?.[0] ?? assert.fail()).format = v as "raw";
    },
    put: onlyValues(["qcow2"]),
  },
  {
    path: "spec.disks[0].access",
    valid: "rw",
    set: (c, v) => {
      (c.spec.disks?.[0] ?? assert.fail()).access = v as "rw";
    },
    put: onlyValues(["rw"]),
  },
  {
    path: "spec.disks[0].devtype",
    valid: "disk",
    set: (c, v) => {
      (c.spec.disks?.[0] ?? assert.fail()).devtype = v as "disk";
    },
    put: onlyValues(["disk"]),
  },
  {
    path: "status.interfaces[0].mac",
    valid: "00:16:3e:2a:41:07",
    set: (c, v) => {
      c.macs[0] = v;
    },
    put: (w, v) => setPair(vif0(w), "mac", v),
  },
  {
    path: "spec.networks[0].bridge",
    valid: "xenbr0",
    set: (c, v) => {
      (c.spec.networks?.[0] ?? assert.fail()).bridge = v;
    },
    put: (w, v) => setPair(vif0(w), "bridge", v),
  },
  {
    path: "spec.networks[0].ip",
    valid: "10.0.0.2",
    set: (c, v) => {
      (c.spec.networks?.[0] ?? assert.fail()).ip = v;
    },
    put: (w, v) => {
      if (v === "")
        vif0(w).splice(
          vif0(w).findIndex(([k]) => k === "ip"),
          1,
        );
      else setPair(vif0(w), "ip", v);
    },
  },
  {
    path: "spec.networks[0].model",
    valid: "e1000",
    set: (c, v) => {
      (c.spec.networks?.[0] ?? assert.fail()).model = v as "e1000";
    },
    put: onlyValues(["e1000"]),
  },
  {
    path: "spec.cpu.pinning",
    valid: "0-3,6",
    set: (c, v) => {
      (c.spec.cpu ?? assert.fail()).pinning = v;
    },
    put: (w, v) => {
      w.cpus = v;
    },
  },
  {
    path: "spec.pciDevices[0]",
    valid: "0000:03:00.0",
    set: (c, v) => {
      (c.spec.pciDevices ?? assert.fail())[0] = v;
    },
    put: onlyValues(["0000:03:00.0"]),
  },
];

const HOSTILE = [
  "",
  "\\",
  "/x\\",
  "\\\\",
  '"',
  "'",
  '\\"',
  "\\'",
  ";",
  "#",
  "# c",
  "]",
  "[",
  ",",
  "=",
  ", ",
  "a,b",
  "a=b",
  "trailing,",
  " lead",
  "trail ",
  '", "vdev=xvdc, target=/dev/sdb" ]; device_model_override = "/tmp/evil" #',
  '"; device_model_override = "/tmp/evil" #',
  "'; device_model_override = '/tmp/evil' #",
  "x, script=/tmp/evil",
  ",script=/tmp/evil",
  "1.2.3.4,script=/tmp/evil",
  "10.0.0.2 script=/tmp/evil",
  ", backend=evil",
  "target=/tmp/evil",
  ", target=/dev/sdb",
  ",permissive=1,seize=1",
  "a\nb",
  '\nkernel = "/tmp/evil"\n',
  "a\rb",
  "a\0b",
  "\t",
  "\x7f",
  "\x1b[31m",
  "\u0085",
  "\u2028",
  "\ufeff",
  "é",
  "日本語",
  "😀",
  "\ud800",
  "\udfff",
  "\\x41",
  "\\0123",
  "\\n",
  "''",
  '""',
  "$(id)",
  "`id`",
  "../../etc/passwd",
];

function attempt(c: DomainConfig, paths: string[]): { text: string } | { refused: HypervisorError } {
  try {
    return { text: emitXlConfig(toXlConfig(c)) };
  } catch (e) {
    assert.ok(e instanceof HypervisorError, `a HypervisorError, not ${String(e)}`);
    assert.equal(e.code, "InvalidConfig");
    assert.ok(
      paths.some((p) => e.message.startsWith(`${p}: `)),
      `the message names ${paths.join(" or ")}: ${e.message}`,
    );
    return { refused: e };
  }
}

/** Runs values through the writer and libxlu: each is refused with its field named, or read back exactly. */
function check(cases: { field: Field; value: string }[]): { accepted: number; refused: number } {
  const [baseDump] = libxlu([emitXlConfig(toXlConfig(base))]);
  const baseView = xlView(ok(baseDump, "base"));
  const written: { field: Field; value: string; text: string }[] = [];
  let refused = 0;
  for (const { field, value } of cases) {
    const c = structuredClone(base);
    field.set(c, value);
    const r = attempt(c, [field.path]);
    if ("refused" in r) refused++;
    else written.push({ field, value, text: r.text });
  }
  const dumps = libxlu(written.map((w) => w.text));
  written.forEach(({ field, value, text }, i) => {
    const want = structuredClone(baseView);
    field.put(want, value);
    assert.deepEqual(xlView(ok(dumps[i], text)), want, `${field.path} = ${JSON.stringify(value)}:\n${text}`);
  });
  return { accepted: written.length, refused };
}

// ---- tests -------------------------------------------------------------------------------------

describe("xl.cfg read by libxlu", () => {
  it("sees an injection when strings are written unescaped (so these checks can fail)", () => {
    // a writer that wraps strings in quotes without escaping them
    const naive = (s: string) => (s.includes('"') ? `'${s.replaceAll("'", "")}'` : `"${s}"`);
    const sources = ["/x\\", '", "vdev=xvdc, target=/dev/sdb" ]; device_model_override = "/tmp/evil" #'];
    const specs = sources.map((s, i) => `format=raw, vdev=xvd${"bc"[i]}, access=rw, target=${s}`);
    const text = `name = "g"\ndisk = [ ${specs.map(naive).join(", ")} ]\n`;
    const d = ok(libxlu([text])[0], text);
    assert.equal(d.settings.device_model_override, "/tmp/evil");
    assert.deepEqual(
      d.disk?.map((x) => x.pdev_path),
      [`/x", 'format=raw, vdev=xvdc, access=rw, target=`, "/dev/sdb"],
    );
    // parseXlConfig reads the file as libxlu does, so a round trip through it would see this too
    assert.deepEqual(parseXlConfig(text), d.settings);
  });

  it("writes those strings so that libxlu reads exactly the intended disks and nothing else", () => {
    const c = structuredClone(base);
    const sources = ["/x\\", '", "vdev=xvdc, target=/dev/sdb" ]; device_model_override = "/tmp/evil" #'];
    c.spec.disks = sources.map((s, i) => ({
      vdev: `xvd${"bc"[i]}`,
      source: s,
      format: "raw",
      access: "rw",
      devtype: "disk",
    }));
    const cfg = toXlConfig(c);
    const text = emitXlConfig(cfg);
    const d = ok(libxlu([text])[0], text);
    assert.deepEqual(d.settings, settingsOf(cfg));
    assert.equal(d.settings.device_model_override, undefined);
    assert.deepEqual(
      d.disk?.map((x) => [x.rc, x.pdev_path, x.vdev, x.format, x.readwrite, x.script, x.backend_domname]),
      [
        [0, "/x\\", "xvdb", "raw", 1, null, null],
        [0, sources[1], "xvdc", "raw", 1, null, null],
      ],
    );
    assert.deepEqual(parseXlConfig(text), cfg);
  });

  it("reads the base domain as intended: disks, CD-ROM, vifs, pci, pinning", () => {
    const cfg = toXlConfig(base);
    const text = emitXlConfig(cfg);
    const d = ok(libxlu([text])[0], text);
    assert.deepEqual(d.settings, settingsOf(cfg));
    assert.deepEqual(
      d.disk?.map((x) => [x.rc, x.pdev_path, x.vdev, x.format, x.readwrite, x.is_cdrom, x.script]),
      [
        [0, "/var/lib/xen/images/web-1.img", "xvda", "qcow2", 1, 0, null],
        [0, "/iso/install.iso", "hdc", "raw", 0, 1, null],
      ],
    );
    assert.deepEqual(
      d.pci?.map((p) => [p.rc, p.domain, p.bus, p.dev, p.func, p.permissive, p.seize, p.name]),
      [[0, 0, 3, 0, 0, 0, 0, null]],
    );
    assert.deepEqual((d.settings.vif as string[]).map(xlVif), [
      [
        ["mac", "00:16:3e:2a:41:07"],
        ["bridge", "xenbr0"],
        ["model", "e1000"],
        ["ip", "10.0.0.2"],
        ["rate", "100Mb/s"],
      ],
      [
        ["mac", "00:16:3e:2a:41:08"],
        ["bridge", "xenbr1"],
      ],
    ]);
    assert.equal(d.settings.cpus, "0-3,6");
  });

  it("refuses hostile strings in every field with the field named, or libxlu reads exactly them", () => {
    const cases = fields.flatMap((field) =>
      HOSTILE.flatMap((h) => [h, field.valid + h].map((value) => ({ field, value }))),
    );
    const { accepted, refused } = check(cases);
    // the free-text fields (paths, cmdline, disk target) carry quotes, backslashes, `;`, `#`, commas, unicode
    assert.ok(accepted > 150 && refused > 500, `accepted ${accepted}, refused ${refused}`);
  });

  it("says which field and which character, as an InvalidConfig error the agent stalls on", () => {
    const cases: [(c: DomainConfig) => void, RegExp][] = [
      [
        (c) => {
          (c.spec.boot ?? assert.fail()).cmdline = "console=hvc0\nkernel = x";
        },
        /^spec\.boot\.cmdline: must not contain control characters \(U\+000A at 12\)/,
      ],
      [
        (c) => {
          (c.spec.boot ?? assert.fail()).kernel = "/boot/a\0b";
        },
        /^spec\.boot\.kernel: .*U\+0000 at 7/,
      ],
      [
        (c) => {
          (c.spec.disks ?? [])[1] = { ...(c.spec.disks?.[1] ?? assert.fail()), source: "/x\r" };
        },
        /^spec\.disks\[1\]\.source: .*U\+000D/,
      ],
      [
        (c) => {
          (c.spec.networks?.[0] ?? assert.fail()).ip = "10.0.0.2, script=/tmp/evil";
        },
        /^spec\.networks\[0\]\.ip: must not contain "," \(it would split the xl device spec\)/,
      ],
      [
        (c) => {
          (c.spec.networks?.[1] ?? assert.fail()).bridge = "br=x";
        },
        /^spec\.networks\[1\]\.bridge: must not contain "="/,
      ],
      [
        (c) => {
          (c.spec.disks?.[0] ?? assert.fail()).vdev = "xvda,script=/x";
        },
        /^spec\.disks\[0\]\.vdev: must not contain ","/,
      ],
      [
        (c) => {
          (c.spec.disks?.[0] ?? assert.fail()).source = "/a,";
        },
        /^spec\.disks\[0\]\.source: must not end with ","/,
      ],
      [
        (c) => {
          (c.spec.pciDevices ?? [])[0] = "0000:03:00.0,permissive=1";
        },
        /^spec\.pciDevices\[0\]: must be a PCI address/,
      ],
      [
        (c) => {
          (c.spec.pciDevices ?? [])[0] = "0000:03:20.0";
        },
        /^spec\.pciDevices\[0\]: device number must be at most 1f/,
      ],
      [
        (c) => {
          (c.spec.cpu ?? assert.fail()).pinning = "0-3,nodes:1";
        },
        /^spec\.cpu\.pinning: must be all or CPU numbers/,
      ],
      [
        (c) => {
          (c.spec.networks?.[0] ?? assert.fail()).rateLimitMbps = 1.5;
        },
        /^spec\.networks\[0\]\.rateLimitMbps: must be an integer/,
      ],
      [
        (c) => {
          (c.spec.cpu ?? assert.fail()).weight = -1;
        },
        /^spec\.cpu\.weight: must be an integer from 1/,
      ],
      [
        (c) => {
          c.spec.vcpus = Number.NaN;
        },
        /^spec\.vcpus: must be an integer/,
      ],
      [
        (c) => {
          c.spec.memory = "lots";
        },
        /^spec\.memory: /,
      ],
      [
        (c) => {
          c.name = "../../tmp/x";
        },
        /^name: must be a domain name/,
      ],
      [
        (c) => {
          (c.spec.boot ?? assert.fail()).cmdline = "a\ud800";
        },
        /^spec\.boot\.cmdline: is not well-formed Unicode/,
      ],
    ];
    for (const [set, re] of cases) {
      const c = structuredClone(base);
      set(c);
      assert.throws(
        () => emitXlConfig(toXlConfig(c)),
        (e: unknown) => e instanceof HypervisorError && e.code === "InvalidConfig" && re.test(e.message),
        re.source,
      );
    }
    // the emitter alone refuses what libxlu cannot read, naming the key
    assert.throws(() => emitXlConfig({ kernel: "a\nb" }), /^HypervisorError: xl.cfg kernel: must not contain control/);
    assert.throws(() => emitXlConfig({ disk: ["ok", "a\0"] }), /xl.cfg disk\[1\]: must not contain control/);
    assert.throws(() => emitXlConfig({ memory: -1 }), /xl.cfg memory: must be a non-negative integer/);
    assert.throws(() => emitXlConfig({ memory: 1.5 }), /xl.cfg memory: must be a non-negative integer/);
    assert.throws(() => emitXlConfig({ Name: "x" }), /xl.cfg key "Name": invalid key/);
    assert.throws(() => emitXlConfig({ _x: "x" }), /xl.cfg key "_x": invalid key/);
  });

  it("property: a random string the writer accepts in any field is what libxlu reads there", () => {
    const specials = [
      ..."\"'\\,=;#[] \t\n\r\0\x7f:/.-_@$`(){}",
      "\u0085",
      "\u2028",
      "é",
      "😀",
      "\ud800",
      "\udc00",
      "x",
    ];
    const char = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...specials) },
      { weight: 2, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
      { weight: 2, arbitrary: fc.constantFrom(..."abcdef0123456789") },
    );
    const arb = fc.record({
      field: fc.constantFrom(...fields),
      prefix: fc.boolean(),
      s: fc.string({ unit: char, maxLength: 24 }),
    });
    const cases = fc
      .sample(arb, { seed: 20261204, numRuns: 4000 })
      .map(({ field, prefix, s }) => ({ field, value: prefix ? field.valid + s : s }));
    const { accepted, refused } = check(cases);
    assert.ok(accepted > 400 && refused > 400, `accepted ${accepted}, refused ${refused}`);
  });

  it("property: any config the emitter writes is read by libxlu and by parseXlConfig as the same settings", () => {
    const key = fc.stringMatching(/^[a-z][._0-9a-z]{0,12}$/);
    const unit = fc.oneof(
      fc.constantFrom(..."\"'\\#;,=[] +"),
      fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
    );
    const str = fc.string({ unit, maxLength: 20 }).filter((s) => !/\p{Cc}/u.test(s));
    const leaf = fc.oneof(str, fc.integer({ min: 0, max: 2 ** 40 }));
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: "small", withCrossShrink: true }, leaf, fc.array(tie("v"), { maxLength: 4 })),
    })).v as fc.Arbitrary<XlValue>;
    const cfgs = fc.sample(fc.dictionary(key, value, { maxKeys: 10 }), { seed: 4177, numRuns: 600 });
    const texts = cfgs.map((c) => emitXlConfig(c));
    const dumps = libxlu(texts);
    cfgs.forEach((cfg, i) => {
      const text = texts[i] as string;
      assert.deepEqual(ok(dumps[i], text).settings, settingsOf(cfg), text);
      assert.deepEqual(parseXlConfig(text), { ...cfg }, text);
    });
  });

  it("parseXlConfig reads hand-written files exactly as libxlu does, refusing what it refuses (differential)", () => {
    // atoms in both parsers' terms: ours turns number tokens into numbers as xl's strtol(.., 0) does
    const strtol0 = (t: string) =>
      /^0x[0-9a-f]+$/.test(t)
        ? Number.parseInt(t, 16)
        : /^0[0-7]*$/.test(t)
          ? Number.parseInt(t, 8)
          : /^[1-9][0-9]*$/.test(t)
            ? Number(t)
            : Number.NaN;
    const same = (ours: XlValue, theirs: XlValue): boolean =>
      Array.isArray(ours)
        ? Array.isArray(theirs) && ours.length === theirs.length && ours.every((x, i) => same(x, theirs[i] as XlValue))
        : typeof ours === "number"
          ? typeof theirs === "string" && strtol0(theirs) === ours
          : ours === theirs;
    const strChar = fc.constantFrom(
      ..."ab é😀#;,=[]' \t\r",
      '"',
      "\\\\",
      '\\"',
      "\\'",
      "\\n",
      "\\t",
      "\\a",
      "\\v",
      "\\x41",
      "\\0123",
      "\\01",
      "\\0 12",
      "\\7a",
      "\\q",
      "\\",
    );
    const quoted = fc
      .tuple(fc.constantFrom('"', "'"), fc.array(strChar, { maxLength: 6 }))
      .map(([q, cs]) => q + cs.join("") + q);
    const atom = fc.oneof(quoted, fc.constantFrom("0", "12", "0x1f", "0777", "08", "1x", "0x", "9abc"));
    const value = fc.letrec((tie) => ({
      v: fc.oneof(
        { depthSize: "small" },
        atom,
        fc
          .array(fc.tuple(tie("v"), fc.constantFrom("", " ", "\n", " # c\n")), { maxLength: 3 })
          .chain((items) =>
            fc
              .tuple(fc.constantFrom("[", "[ ", "[\n"), fc.constantFrom("]", ",]", ", ]", ",\n]"))
              .map(([o, c]) => o + items.map(([v, sep]) => v + sep).join(",") + (items.length ? c : "]")),
          ),
      ),
    })).v as fc.Arbitrary<string>;
    const stmt = fc
      .tuple(
        fc.constantFrom("a", "b", "a.b", "k_1", "x9", "Ab", "_a", "9a"),
        fc.constantFrom(" = ", "=", " += ", "\t=\t", " ", " =\n"),
        value,
      )
      .map(([k, op, v]) => k + op + v);
    const junk = fc.constantFrom("", "", "", " ", "\t", "\r", "-", "$", "é", "#", "# c", ";", "\\", "'", '"', "]", ",");
    const sep = fc.constantFrom("\n", "\n", ";", "; ", " # c\n", "\n\n", "", " ");
    const file = fc
      .array(fc.tuple(stmt, junk, sep), { maxLength: 5 })
      .map((parts) => parts.map(([s, j, e]) => s + j + e).join(""));
    const texts = fc.sample(file, { seed: 417, numRuns: 3000 });
    const dumps = libxlu(texts);
    let agreedOk = 0;
    let agreedErr = 0;
    texts.forEach((text, i) => {
      const d = dumps[i] as Dump;
      let ours: XlConfig | undefined;
      let why = "";
      try {
        ours = parseXlConfig(text);
      } catch (e) {
        why = String(e);
      }
      if (!d.ok) {
        assert.equal(
          ours,
          undefined,
          `libxlu refused but parseXlConfig read ${JSON.stringify(ours)}:\n${JSON.stringify(text)}\n${d.report}`,
        );
        agreedErr++;
        return;
      }
      assert.ok(
        ours,
        `libxlu read ${JSON.stringify(d.settings)} but parseXlConfig refused (${why}):\n${JSON.stringify(text)}`,
      );
      assert.deepEqual(Object.keys(ours).sort(), Object.keys(d.settings).sort(), JSON.stringify(text));
      for (const k of Object.keys(ours))
        assert.ok(
          same(ours[k] as XlValue, d.settings[k] as XlValue),
          `${k}: ${JSON.stringify(ours[k])} vs libxlu ${JSON.stringify(d.settings[k])}:\n${JSON.stringify(text)}`,
        );
      agreedOk++;
    });
    assert.ok(agreedOk > 300 && agreedErr > 300, `read ${agreedOk}, refused ${agreedErr}`);
  });
});
