// Domain scopes: which xl commands run in a transient systemd scope, under which unit name, and
// with what command line; the runner's scoped commands write to files, not pipes (a dead agent's
// pipe would kill xl halfway). The real thing runs in the lab (e2e/test/xenlab.test.ts).
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  DOMAIN_SLICE,
  type DomainConfig,
  domainScope,
  scopedCommand,
  systemdBooted,
  XlHypervisor,
} from "../src/index.ts";
import type { XlRunOptions } from "../src/xl/exec.ts";
import { xlRunner } from "../src/xl/exec.ts";

const UUID = "5c0e2a8b-1f3d-4d7e-9a44-0c2e6b1f7a10";
// systemd's rule for unit names (unit-name.c): at most 255 characters of [A-Za-z0-9:_.\-@].
const VALID_UNIT = /^[A-Za-z0-9:_.\\-]{1,246}\.scope$/;

describe("domainScope", () => {
  it("names a scope after the domain's UUID and the call", () => {
    assert.deepEqual(domainScope("create", UUID, "k1"), {
      unit: `kubexen-domain-${UUID}-k1.scope`,
      description: `kubexen domain ${UUID} (xl create)`,
    });
    assert.equal(domainScope("restore", UUID, "k2").unit, `kubexen-domain-${UUID}-k2.scope`);
    assert.equal(domainScope("migrate-receive", UUID, "k3").unit, `kubexen-domain-${UUID}-k3.scope`);
    assert.equal(domainScope("create", UUID.toUpperCase(), "k1").unit, `kubexen-domain-${UUID}-k1.scope`);
  });

  it("says what it is when the UUID is unknown", () => {
    assert.equal(domainScope("restore", undefined, "a").unit, "kubexen-domain-restore-a.scope");
    assert.equal(domainScope("migrate-receive", undefined, "a").unit, "kubexen-domain-incoming-a.scope");
    assert.equal(domainScope("migrate-receive", "", "a").unit, "kubexen-domain-incoming-a.scope");
    assert.match(domainScope("restore", undefined, "a").description, /unknown UUID.*xl restore/);
  });

  it("gives two calls for one domain two scopes", () => {
    assert.notEqual(domainScope("create", UUID, "a").unit, domainScope("migrate-receive", UUID, "b").unit);
  });

  it("refuses an instance that could break the unit name", () => {
    for (const bad of ["", "A", "a-b", "a.b", "a/b", "x".repeat(33), "a b"])
      assert.throws(() => domainScope("create", UUID, bad), /instance/);
  });

  it("makes a valid unit name of whatever it is given as a UUID", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.uuid(), fc.constant("../../etc"), fc.constant(`${UUID}\n--unit=x`)),
        fc.constantFrom("create", "restore", "migrate-receive") as fc.Arbitrary<
          "create" | "restore" | "migrate-receive"
        >,
        fc.stringMatching(/^[a-z0-9]{1,32}$/),
        (uuid, verb, instance) => {
          const s = domainScope(verb, uuid, instance);
          assert.match(s.unit, VALID_UNIT);
          assert.ok(!s.description.includes("\n"));
          // A UUID goes in only when it is one.
          assert.equal(
            s.unit.startsWith(`kubexen-domain-${uuid.toLowerCase()}-`),
            /^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$/i.test(uuid),
          );
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("scopedCommand", () => {
  it("runs the command itself without a scope", () => {
    assert.deepEqual(scopedCommand("xl", ["create", "/x.cfg"], undefined), {
      command: "xl",
      args: ["create", "/x.cfg"],
    });
  });

  it("runs it through systemd-run --scope in machine.slice, its arguments after --", () => {
    const scope = domainScope("create", UUID, "k1");
    assert.equal(DOMAIN_SLICE, "machine.slice");
    assert.deepEqual(scopedCommand("/usr/sbin/xl", ["create", "-p", "/x.cfg"], scope), {
      command: "systemd-run",
      args: [
        "--scope",
        "--collect",
        "--quiet",
        "--slice=machine.slice",
        `--unit=kubexen-domain-${UUID}-k1.scope`,
        `--description=kubexen domain ${UUID} (xl create)`,
        "--",
        "/usr/sbin/xl",
        "create",
        "-p",
        "/x.cfg",
      ],
    });
  });

  it("never lets the command's arguments be read as systemd-run's", () => {
    fc.assert(
      fc.property(fc.array(fc.string()), (args) => {
        const r = scopedCommand("xl", args, domainScope("create", UUID, "a"));
        const sep = r.args.indexOf("--");
        assert.deepEqual(r.args.slice(sep + 1), ["xl", ...args]);
        assert.ok(r.args.slice(0, sep).every((a) => a.startsWith("--")));
      }),
    );
  });
});

describe("systemdBooted", () => {
  it("is true exactly when the directory exists", () => {
    const d = mkdtempSync(join(tmpdir(), "sd-"));
    assert.equal(systemdBooted(d), true);
    assert.equal(systemdBooted(join(d, "system")), false);
  });
});

describe("the xl driver's scoped commands", () => {
  const cfg: DomainConfig = {
    name: "lab.web-1",
    uuid: UUID,
    macs: [],
    spec: {
      type: "pvh",
      vcpus: 1,
      memory: "128Mi",
      boot: { kernel: "/guest/vmlinuz" },
      priority: 0,
      runStrategy: "Always",
      powerState: "Running",
      evictionStrategy: "LiveMigrate",
      terminationGracePeriodSeconds: 60,
    } as DomainConfig["spec"],
  };
  /** A fake xl: records each call's scope, and lists the domain once created. */
  const fake = (domainScopes: boolean) => {
    const calls: Array<{ args: string[]; scope?: string }> = [];
    let created = false;
    const hv = new XlHypervisor({
      workDir: mkdtempSync(join(tmpdir(), "xl-")),
      domainScopes,
      xl: async (args: string[], opts?: XlRunOptions) => {
        calls.push({ args, scope: opts?.scope?.unit });
        if (args[0] === "create" || args[0] === "restore") created = true;
        const list = created
          ? `Name ID Mem VCPUs State Time(s) Security Label\nlab.web-1 5 128 1 -b---- 1.0 ${UUID}\n`
          : "";
        if (args[0] === "list")
          return {
            stdout: `Name                                        ID   Mem VCPUs\tState\tTime(s)\n${list}`,
            stderr: "",
          };
        return { stdout: "", stderr: "" };
      },
    });
    return { hv, calls };
  };

  it("creates and restores in a scope named after the domain; nothing else is scoped", async () => {
    const { hv, calls } = fake(true);
    await hv.create(cfg).catch(() => {});
    await hv.restore("/var/lib/kubexen/save/x.save", { uuid: UUID }).catch(() => {});
    await hv.restore("/var/lib/kubexen/save/y.save").catch(() => {});
    const scoped = calls.filter((c) => c.scope);
    assert.deepEqual(
      scoped.map((c) => c.args[0]),
      ["create", "restore", "restore"],
    );
    assert.match(scoped[0]?.scope ?? "", new RegExp(`^kubexen-domain-${UUID}-[a-z0-9]+\\.scope$`));
    assert.match(scoped[1]?.scope ?? "", new RegExp(`^kubexen-domain-${UUID}-[a-z0-9]+\\.scope$`));
    assert.match(scoped[2]?.scope ?? "", /^kubexen-domain-restore-[a-z0-9]+\.scope$/);
    assert.equal(new Set(scoped.map((c) => c.scope)).size, 3, "each call its own scope");
    assert.ok(calls.filter((c) => !c.scope).every((c) => !["create", "restore"].includes(c.args[0] ?? "")));
  });

  it("scopes nothing where systemd is not PID 1", async () => {
    const { hv, calls } = fake(false);
    await hv.create(cfg).catch(() => {});
    await hv.restore("/x.save", { uuid: UUID }).catch(() => {});
    assert.ok(calls.some((c) => c.args[0] === "create"));
    assert.ok(calls.every((c) => !c.scope));
  });

  it("runs migrate-receive through systemd-run in the arriving domain's scope", async () => {
    // A fake systemd-run on PATH that records its arguments and fails: enough to see the command line.
    const bin = mkdtempSync(join(tmpdir(), "bin-"));
    const record = join(bin, "args");
    writeFileSync(join(bin, "systemd-run"), `#!/bin/sh\nprintf '%s\\n' "$@" > ${record}\nexit 1\n`);
    chmodSync(join(bin, "systemd-run"), 0o755);
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    try {
      const { hv } = fake(true);
      await assert.rejects(hv.migrateReceive(new PassThrough(), { uuid: UUID }));
    } finally {
      process.env.PATH = path;
    }
    const args = readFileSync(record, "utf8").trim().split("\n");
    assert.deepEqual(args.slice(-3), ["--", "xl", "migrate-receive"]);
    assert.ok(args.some((a) => new RegExp(`^--unit=kubexen-domain-${UUID}-[a-z0-9]+\\.scope$`).test(a)));
  });
});

describe("xlRunner with a scope", () => {
  it("runs through systemd-run, returns the command's output from files it then removes", async () => {
    const bin = mkdtempSync(join(tmpdir(), "bin-"));
    // systemd-run --scope execs the command after its own options: so does this stand-in.
    writeFileSync(join(bin, "systemd-run"), '#!/bin/sh\nwhile [ "$1" != "--" ]; do shift; done\nshift\nexec "$@"\n');
    // The stand-in xl says whether its stdout and stderr are files (Node's pipes are socket pairs).
    writeFileSync(
      join(bin, "fake-xl"),
      '#!/bin/sh\n[ -f /dev/stdout ] && echo "stdout: $*" || echo "stdout is not a file"\n[ -f /dev/stderr ] && echo "stderr: file" >&2 || echo "stderr is not a file" >&2\n',
    );
    chmodSync(join(bin, "systemd-run"), 0o755);
    chmodSync(join(bin, "fake-xl"), 0o755);
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    const before = readdirSync(tmpdir()).filter((f) => f.startsWith("kubexen-domain-")).length;
    try {
      const run = xlRunner(join(bin, "fake-xl"));
      const r = await run(["create", "/x.cfg"], { scope: domainScope("create", UUID, "t1") });
      assert.equal(r.stdout, "stdout: create /x.cfg\n");
      assert.equal(r.stderr, "stderr: file\n");
      const plain = await run(["list"]);
      assert.equal(plain.stdout, "stdout is not a file\n", "unscoped commands keep their pipes");
    } finally {
      process.env.PATH = path;
    }
    assert.equal(readdirSync(tmpdir()).filter((f) => f.startsWith("kubexen-domain-")).length, before, "files removed");
  });

  it("reports a scoped command's failure with its stderr", async () => {
    const bin = mkdtempSync(join(tmpdir(), "bin-"));
    writeFileSync(join(bin, "systemd-run"), '#!/bin/sh\nwhile [ "$1" != "--" ]; do shift; done\nshift\nexec "$@"\n');
    writeFileSync(
      join(bin, "fake-xl"),
      "#!/bin/sh\necho 'libxl: error: domain with name lab.web-1 exists' >&2\nexit 253\n",
    );
    chmodSync(join(bin, "systemd-run"), 0o755);
    chmodSync(join(bin, "fake-xl"), 0o755);
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    try {
      await assert.rejects(
        xlRunner(join(bin, "fake-xl"))(["create", "/x.cfg"], { scope: domainScope("create", UUID, "t2") }),
        (err: Error & { code?: string }) => err.code === "AlreadyExists" && /exists/.test(err.message),
      );
    } finally {
      process.env.PATH = path;
    }
  });
});
