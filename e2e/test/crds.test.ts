// kubexen's API on a real API server: the generated CRDs install, every
// example applies, and bad manifests are rejected with messages that name
// the field (each cause on the field the user got wrong, no CEL evaluation
// errors), with nothing stored.
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { parse } from "yaml";
import { type ControlPlane, startKubexenControlPlane } from "../src/index.ts";

const examplesDir = fileURLToPath(new URL("../../examples", import.meta.url));

const domain = (name: string, spec: string) => `apiVersion: kubexen.io/v1alpha1
kind: XenDomain
metadata: {name: ${name}, namespace: api-test}
spec:
${spec}`;
const pvh = "  type: pvh\n  memory: 512Mi\n  boot: {kernel: /boot/vmlinuz}\n";
const hvm = "  type: hvm\n  memory: 1Gi\n";

/** A cause the API server must report: the field and what its message says. */
type Cause = [field: string, message: RegExp];

interface BadCase {
  what: string;
  kind: string;
  name: string;
  manifest: string;
  /** Must appear in kubectl's answer: the field it names. */
  field: RegExp;
  /**
   * Every cause of the API server's refusal, and nothing else. Absent where
   * the refusal is not a field validation (unknown fields: strict decoding).
   */
  causes?: Cause[];
}

const PATH_MESSAGE = /^Invalid value: ".*": must be an absolute path of \/-separated names made of letters, digits/;
const WHOLE_MIB = (v: string) => new RegExp(`must be a whole number of MiB, got ${v.replaceAll(".", "\\.")}$`);
const AT_LEAST = (v: string) =>
  new RegExp(`must be at least 16Mi, got ${v.replaceAll(".", "\\.")} \\(a bare number is bytes`);

type DomainCase = Omit<BadCase, "kind" | "name" | "manifest"> & { spec: string };
const domainCases: DomainCase[] = [
  {
    what: "unknown guest type",
    field: /spec\.type: Unsupported value: "kvm"/,
    causes: [["spec.type", /^Unsupported value: "kvm"/]],
    spec: "  type: kvm\n  memory: 512Mi\n",
  },
  {
    what: "zero vCPUs",
    field: /spec\.vcpus: Invalid value: 0: spec\.vcpus in body should be greater than or equal to 1/,
    causes: [["spec.vcpus", /should be greater than or equal to 1/]],
    spec: `${pvh}  vcpus: 0\n`,
  },
  {
    what: "negative vCPUs",
    field: /spec\.vcpus: Invalid value: -2/,
    causes: [["spec.vcpus", /should be greater than or equal to 1/]],
    spec: `${pvh}  vcpus: -2\n`,
  },
  {
    what: "vCPUs as a word",
    field: /spec\.vcpus: Invalid value: "string": spec\.vcpus in body must be of type integer/,
    causes: [["spec.vcpus", /must be of type integer/]],
    spec: `${pvh}  vcpus: two\n`,
  },
  {
    what: "zero memory",
    field: /spec\.memory: Invalid value: .*must be at least 16Mi/,
    causes: [["spec.memory", AT_LEAST("0")]],
    spec: "  boot: {kernel: /boot/vmlinuz}\n  memory: 0\n",
  },
  {
    what: "negative memory",
    field: /spec\.memory: Invalid value: "-1Gi": spec\.memory in body should match/,
    causes: [["spec.memory", /^Invalid value: "-1Gi": spec\.memory in body should match/]],
    spec: "  boot: {kernel: /boot/vmlinuz}\n  memory: -1Gi\n",
  },
  {
    what: "memory that is not a quantity",
    field: /spec\.memory: Invalid value: "lots"/,
    causes: [["spec.memory", /^Invalid value: "lots": spec\.memory in body should match/]],
    spec: "  boot: {kernel: /boot/vmlinuz}\n  memory: lots\n",
  },
  {
    what: "maxMemory that is not a quantity",
    field: /spec\.maxMemory: Invalid value: "lots"/,
    causes: [["spec.maxMemory", /^Invalid value: "lots": spec\.maxMemory in body should match/]],
    spec: "  boot: {kernel: /boot/vmlinuz}\n  memory: 1Gi\n  maxMemory: lots\n",
  },
  {
    what: "memory in bare bytes below the minimum",
    field: /spec\.memory: Invalid value: .*must be at least 16Mi, got 512 \(a bare number is bytes/,
    causes: [
      ["spec.memory", AT_LEAST("512")],
      ["spec.memory", WHOLE_MIB("512")],
    ],
    spec: "  boot: {kernel: /boot/vmlinuz}\n  memory: 512\n",
  },
  {
    what: "memory not a whole MiB",
    field: /spec\.memory: Invalid value: .*must be a whole number of MiB, got 100.5Mi/,
    causes: [["spec.memory", WHOLE_MIB("100.5Mi")]],
    spec: "  boot: {kernel: /boot/vmlinuz}\n  memory: 100.5Mi\n",
  },
  {
    what: "memory of 1.5Mi",
    field: /spec\.memory: Invalid value: .*must be a whole number of MiB, got 1.5Mi/,
    causes: [
      ["spec.memory", AT_LEAST("1.5Mi")],
      ["spec.memory", WHOLE_MIB("1.5Mi")],
    ],
    spec: "  boot: {kernel: /boot/vmlinuz}\n  memory: 1.5Mi\n",
  },
  {
    what: "memory of 1000000 bytes",
    field: /spec\.memory: Invalid value: .*must be a whole number of MiB, got 1000000/,
    causes: [
      ["spec.memory", AT_LEAST("1000000")],
      ["spec.memory", WHOLE_MIB("1000000")],
    ],
    spec: "  boot: {kernel: /boot/vmlinuz}\n  memory: 1000000\n",
  },
  {
    what: "memory of a fraction of a GiB that is not whole MiB",
    field: /spec\.memory: Invalid value: .*must be a whole number of MiB, got 1.1Gi/,
    causes: [["spec.memory", WHOLE_MIB("1.1Gi")]],
    spec: "  boot: {kernel: /boot/vmlinuz}\n  memory: 1.1Gi\n",
  },
  {
    what: "memory above 16Ti",
    field: /spec\.memory: Invalid value: .*must be at most 16Ti, got 17Ti/,
    causes: [["spec.memory", /must be at most 16Ti, got 17Ti$/]],
    spec: "  boot: {kernel: /boot/vmlinuz}\n  memory: 17Ti\n",
  },
  {
    what: "memory beyond any integer",
    field: /spec\.memory: Invalid value: .*must be at most 16Ti, got 99999999999Ei/,
    causes: [["spec.memory", /must be at most 16Ti, got 99999999999Ei$/]],
    spec: "  boot: {kernel: /boot/vmlinuz}\n  memory: 99999999999Ei\n",
  },
  {
    what: "memory above maxMemory",
    field: /spec\.memory: Invalid value: .*memory \(4Gi\) must not exceed maxMemory \(2Gi\)/,
    causes: [["spec.memory", /memory \(4Gi\) must not exceed maxMemory \(2Gi\)$/]],
    spec: "  boot: {kernel: /boot/vmlinuz}\n  memory: 4Gi\n  maxMemory: 2Gi\n",
  },
  {
    what: "maxMemory below the minimum",
    field: /spec\.maxMemory: Invalid value: .*must be at least 16Mi/,
    causes: [["spec.maxMemory", AT_LEAST("1Mi")]],
    spec: "  boot: {kernel: /boot/vmlinuz}\n  memory: 16Mi\n  maxMemory: 1Mi\n",
  },
  {
    what: "vcpus above maxVcpus",
    field: /spec\.vcpus: Invalid value: .*vcpus must not exceed maxVcpus/,
    causes: [["spec.vcpus", /vcpus must not exceed maxVcpus$/]],
    spec: `${pvh}  vcpus: 4\n  maxVcpus: 2\n`,
  },
  {
    what: "a zero maxVcpus",
    field: /spec\.maxVcpus: Invalid value: 0/,
    causes: [["spec.maxVcpus", /should be greater than or equal to 1/]],
    spec: `${pvh}  maxVcpus: 0\n`,
  },
  {
    what: "an hvm guest with 129 vCPUs",
    field: /spec\.vcpus: Invalid value: .*hvm and pvh guests can have at most 128 vCPUs/,
    causes: [
      ["spec.vcpus", /hvm and pvh guests can have at most 128 vCPUs \(HVM_MAX_VCPUS\); only pv guests may have more$/],
    ],
    spec: `${hvm}  vcpus: 129\n`,
  },
  {
    what: "a pvh guest with maxVcpus 200",
    field: /spec\.maxVcpus: Invalid value: .*hvm and pvh guests can have a maxVcpus of at most 128/,
    causes: [
      [
        "spec.maxVcpus",
        /hvm and pvh guests can have a maxVcpus of at most 128 \(HVM_MAX_VCPUS\); only pv guests may have more$/,
      ],
    ],
    spec: `${pvh}  maxVcpus: 200\n`,
  },
  {
    what: "a pv guest with 1000 vCPUs",
    field: /spec\.vcpus: Invalid value: 1000: spec\.vcpus in body should be less than or equal to 512/,
    causes: [["spec.vcpus", /should be less than or equal to 512/]],
    spec: "  type: pv\n  memory: 1Gi\n  vcpus: 1000\n  boot: {bootloader: pygrub}\n",
  },
  {
    what: "a maxVcpus beyond any CPU count next to a CPU cap",
    field: /spec\.maxVcpus: Invalid value: 1000000000000000000/,
    causes: [["spec.maxVcpus", /should be less than or equal to 512/]],
    spec: "  type: pv\n  memory: 1Gi\n  boot: {bootloader: pygrub}\n  maxVcpus: 1000000000000000000\n  cpu: {cap: 300}\n",
  },
  {
    what: "a pv guest without kernel or bootloader",
    field: /spec\.boot: Required value: a pv guest needs boot\.kernel or boot\.bootloader/,
    causes: [["spec.boot", /^Required value: a pv guest needs boot\.kernel or boot\.bootloader$/]],
    spec: "  type: pv\n  memory: 1Gi\n",
  },
  {
    what: "a bootloader given as a path",
    field: /spec\.boot\.bootloader: Unsupported value: "\/usr\/lib\/xen\/bin\/pygrub"/,
    causes: [
      ["spec.boot.bootloader", /^Unsupported value: "\/usr\/lib\/xen\/bin\/pygrub": supported values: "pygrub"$/],
    ],
    spec: "  type: pv\n  memory: 1Gi\n  boot: {bootloader: /usr/lib/xen/bin/pygrub}\n",
  },
  {
    what: "a bootloader Xen does not ship",
    field: /spec\.boot\.bootloader: Unsupported value: "sh"/,
    causes: [["spec.boot.bootloader", /^Unsupported value: "sh"/]],
    spec: "  type: pv\n  memory: 1Gi\n  boot: {bootloader: sh}\n",
  },
  {
    what: "a pvh guest without kernel",
    field: /spec\.boot: Required value: a pvh guest needs boot\.kernel/,
    causes: [["spec.boot", /^Required value: a pvh guest needs boot\.kernel$/]],
    spec: "  type: pvh\n  memory: 1Gi\n  boot: {cmdline: console=hvc0}\n",
  },
  {
    what: "a relative kernel path",
    field: /spec\.boot\.kernel: Invalid value: ".*": must be an absolute path/,
    causes: [["spec.boot.kernel", PATH_MESSAGE]],
    spec: "  memory: 1Gi\n  boot: {kernel: vmlinuz}\n",
  },
  ...(
    [
      ["a .. segment", "/boot/../etc/shadow"],
      ["a . segment", "/boot/./vmlinuz"],
      ["a double slash", "//boot/vmlinuz"],
      ["a trailing slash", "/boot/"],
      ["the root alone", "/"],
      ["a space", "/boot/vm linuz"],
      ["a comma and an equals sign", "/boot/vmlinuz,target=/etc/shadow"],
      ["a double quote", '/boot/vm\\"linuz'],
      ["a single quote", "/boot/vm'linuz"],
      ["a backslash", "/boot/vm\\\\linuz"],
      ["a hash", "/boot/vm#linuz"],
      ["a semicolon", "/boot/vm;linuz"],
      ["a newline", "/boot/vm\\nlinuz"],
      ["a NUL", "/boot/vm\\u0000linuz"],
      ["a non-ASCII letter", "/boot/vmlinüz"],
    ] as const
  ).map(
    ([what, path]): DomainCase => ({
      what: `a kernel path with ${what}`,
      field: /spec\.boot\.kernel: Invalid value: ".*": must be an absolute path/,
      causes: [["spec.boot.kernel", PATH_MESSAGE]],
      spec: `  memory: 1Gi\n  boot: {kernel: "${path}"}\n`,
    }),
  ),
  {
    what: "a ramdisk path with a .. segment",
    field: /spec\.boot\.ramdisk: Invalid value: ".*": must be an absolute path/,
    causes: [["spec.boot.ramdisk", PATH_MESSAGE]],
    spec: "  memory: 1Gi\n  boot: {kernel: /boot/vmlinuz, ramdisk: /boot/../initrd}\n",
  },
  {
    what: "a disk source outside the tree through ..",
    field: /spec\.disks\[1\]\.source: Invalid value: ".*": must be an absolute path/,
    causes: [["spec.disks[1].source", PATH_MESSAGE]],
    spec: `${pvh}  disks: [{vdev: xvda, source: /var/lib/xen/images/a.img}, {vdev: xvdb, source: /var/lib/xen/images/../../../../etc/shadow}]\n`,
  },
  {
    what: "a disk source that would add xl disk-spec keys",
    field: /spec\.disks\[0\]\.source: Invalid value: ".*": must be an absolute path/,
    causes: [["spec.disks[0].source", PATH_MESSAGE]],
    spec: `${pvh}  disks: [{vdev: xvda, source: "/dev/vg0/a,backendtype=phy"}]\n`,
  },
  {
    what: "a relative disk source",
    field: /spec\.disks\[0\]\.source: Invalid value: ".*": must be an absolute path/,
    causes: [["spec.disks[0].source", PATH_MESSAGE]],
    spec: `${pvh}  disks: [{vdev: xvda, source: images/a.img}]\n`,
  },
  {
    what: "a kernel command line with a newline",
    field: /spec\.boot\.cmdline: Invalid value: ".*": must not contain control characters/,
    causes: [["spec.boot.cmdline", /^Invalid value: ".*": must not contain control characters$/]],
    spec: "  memory: 1Gi\n  boot: {kernel: /boot/vmlinuz, cmdline: \"console=hvc0\\nkernel = '/etc/shadow'\"}\n",
  },
  {
    what: "a kernel command line with a NUL",
    field: /spec\.boot\.cmdline: Invalid value: ".*": must not contain control characters/,
    causes: [["spec.boot.cmdline", /^Invalid value: ".*": must not contain control characters$/]],
    spec: '  memory: 1Gi\n  boot: {kernel: /boot/vmlinuz, cmdline: "quiet\\u0000"}\n',
  },
  {
    what: "a kernel command line with a C1 control character",
    field: /spec\.boot\.cmdline: Invalid value: ".*": must not contain control characters/,
    causes: [["spec.boot.cmdline", /^Invalid value: ".*": must not contain control characters$/]],
    spec: '  memory: 1Gi\n  boot: {kernel: /boot/vmlinuz, cmdline: "quiet\\u0085"}\n',
  },
  {
    what: "UEFI firmware on a pvh guest",
    field: /spec\.boot\.firmware: Forbidden: boot\.firmware applies to hvm guests only/,
    causes: [["spec.boot.firmware", /^Forbidden: boot\.firmware applies to hvm guests only$/]],
    spec: "  memory: 1Gi\n  boot: {kernel: /boot/vmlinuz, firmware: uefi}\n",
  },
  {
    what: "a CD-ROM on a pvh guest",
    field: /spec\.disks: Forbidden: a pvh guest has no emulated devices, so none of its disks can have devtype cdrom/,
    causes: [
      [
        "spec.disks",
        /^Forbidden: a pvh guest has no emulated devices, so none of its disks can have devtype cdrom: use devtype disk, or type hvm$/,
      ],
    ],
    spec: `${pvh}  disks: [{vdev: xvda, source: /var/lib/xen/images/a.img}, {vdev: xvdb, source: /var/lib/xen/images/b.iso, access: ro, devtype: cdrom}]\n`,
  },
  { what: "an unknown spec field", field: /unknown field "spec\.colour"/, spec: `${pvh}  colour: blue\n` },
  {
    what: "a misspelt boot field",
    field: /unknown field "spec\.boot\.kernal"/,
    spec: "  memory: 1Gi\n  boot: {kernel: /boot/vmlinuz, kernal: /boot/x}\n",
  },
  {
    what: "a MAC with non-hex digits",
    field: /spec\.networks\[0\]\.mac: Invalid value: "00:16:3e:zz:00:01"/,
    causes: [
      ["spec.networks[0].mac", /^Invalid value: "00:16:3e:zz:00:01": spec\.networks\[0\]\.mac in body should match/],
    ],
    spec: `${pvh}  networks: [{bridge: xenbr0, mac: "00:16:3e:zz:00:01"}]\n`,
  },
  {
    what: "a multicast MAC",
    field: /spec\.networks\[0\]\.mac: Invalid value: "01:00:5e:00:00:01"/,
    causes: [["spec.networks[0].mac", /^Invalid value: "01:00:5e:00:00:01"/]],
    spec: `${pvh}  networks: [{bridge: xenbr0, mac: "01:00:5e:00:00:01"}]\n`,
  },
  {
    what: "a bridge name longer than an interface name",
    field: /spec\.networks\[0\]\.bridge: Invalid value: "averyveryverylongbridge"/,
    causes: [["spec.networks[0].bridge", /^Invalid value: "averyveryverylongbridge"/]],
    spec: `${pvh}  networks: [{bridge: averyveryverylongbridge}]\n`,
  },
  {
    what: "a bridge named ..",
    field: /spec\.networks\[0\]\.bridge: Invalid value: "\.\."/,
    causes: [["spec.networks[0].bridge", /^Invalid value: "\.\.": spec\.networks\[0\]\.bridge in body should match/]],
    spec: `${pvh}  networks: [{bridge: ".."}]\n`,
  },
  {
    what: "a bridge name that reads as an option",
    field: /spec\.networks\[1\]\.bridge: Invalid value: "-xenbr0"/,
    causes: [["spec.networks[1].bridge", /^Invalid value: "-xenbr0"/]],
    spec: `${pvh}  networks: [{bridge: xenbr0}, {bridge: "-xenbr0"}]\n`,
  },
  {
    what: "a bridge name with a space",
    field: /spec\.networks\[0\]\.bridge: Invalid value: "xen br0"/,
    causes: [["spec.networks[0].bridge", /^Invalid value: "xen br0"/]],
    spec: `${pvh}  networks: [{bridge: "xen br0"}]\n`,
  },
  ...(
    [
      ["an octet above 255", "10.0.0.256"],
      ["three parts", "10.0.0"],
      ["a leading zero", "10.0.0.01"],
      ["a host name", "web.example"],
      ["an IPv6 address", "2001:db8::1"],
      ["a vif spec injection", "1.2.3.4,mac=x"],
    ] as const
  ).map(
    ([what, ip]): DomainCase => ({
      what: `an IP address with ${what}`,
      field: /spec\.networks\[0\]\.ip: Invalid value: ".*": must be an IPv4 address in dotted-quad form/,
      causes: [
        [
          "spec.networks[0].ip",
          /^Invalid value: ".*": must be an IPv4 address in dotted-quad form, for example 192\.0\.2\.10$/,
        ],
      ],
      spec: `${pvh}  networks: [{bridge: xenbr0, ip: "${ip}"}]\n`,
    }),
  ),
  {
    what: "an IP address longer than any IPv4 address",
    field: /spec\.networks\[0\]\.ip: Too long/,
    causes: [["spec.networks[0].ip", /^Too long: may not be more than 15 bytes$/]],
    spec: `${pvh}  networks: [{bridge: xenbr0, ip: "1.2.3.4; rm -rf /"}]\n`,
  },
  {
    what: "two disks with the same vdev",
    field: /spec\.disks\[1\]: Duplicate value/,
    causes: [["spec.disks[1]", /^Duplicate value: /]],
    spec: `${pvh}  disks: [{vdev: xvda, source: /dev/a}, {vdev: xvda, source: /dev/b}]\n`,
  },
  {
    what: "a vdev Xen does not know",
    field: /spec\.disks\[0\]\.vdev: Invalid value: "vda"/,
    causes: [["spec.disks[0].vdev", /^Invalid value: "vda"/]],
    spec: `${pvh}  disks: [{vdev: vda, source: /dev/a}]\n`,
  },
  {
    what: "an unsupported disk format",
    field: /spec\.disks\[0\]\.format: Unsupported value: "vmdk"/,
    causes: [["spec.disks[0].format", /^Unsupported value: "vmdk"/]],
    spec: `${pvh}  disks: [{vdev: xvda, source: /dev/a, format: vmdk}]\n`,
  },
  {
    what: "a disk without a source",
    field: /spec\.disks\[0\]\.source: Required value/,
    causes: [["spec.disks[0].source", /^Required value$/]],
    spec: `${pvh}  disks: [{vdev: xvda}]\n`,
  },
  {
    what: "a PCI address without domain",
    field: /spec\.pciDevices\[0\]: Invalid value: "03:00.0"/,
    causes: [["spec.pciDevices[0]", /^Invalid value: "03:00.0"/]],
    spec: `${pvh}  pciDevices: ["03:00.0"]\n`,
  },
  {
    what: "PCI passthrough with evictionStrategy LiveMigrate",
    field: /spec\.evictionStrategy: Forbidden: a domain with pciDevices cannot live-migrate/,
    causes: [["spec.evictionStrategy", /^Forbidden: a domain with pciDevices cannot live-migrate/]],
    spec: `${pvh}  pciDevices: ["0000:03:00.0"]\n  evictionStrategy: LiveMigrate\n`,
  },
  {
    what: "an unknown runStrategy",
    field: /spec\.runStrategy: Unsupported value: "Sometimes"/,
    causes: [["spec.runStrategy", /^Unsupported value: "Sometimes"/]],
    spec: `${pvh}  runStrategy: Sometimes\n`,
  },
  {
    what: "an unknown powerState",
    field: /spec\.powerState: Unsupported value: "Sleeping"/,
    causes: [["spec.powerState", /^Unsupported value: "Sleeping"/]],
    spec: `${pvh}  powerState: Sleeping\n`,
  },
  {
    what: "a zero credit2 weight",
    field: /spec\.cpu\.weight: Invalid value: 0/,
    causes: [["spec.cpu.weight", /should be greater than or equal to 1/]],
    spec: `${pvh}  cpu: {weight: 0}\n`,
  },
  {
    what: "a CPU cap above 100% per vCPU",
    field: /spec\.cpu\.cap: Invalid value: .*cpu\.cap must not exceed 100/,
    causes: [
      [
        "spec.cpu.cap",
        /cpu\.cap must not exceed 100 \(percent of one physical CPU\) per vCPU \(of maxVcpus, else vcpus\)$/,
      ],
    ],
    spec: `${pvh}  vcpus: 2\n  cpu: {cap: 300}\n`,
  },
  {
    what: "a CPU cap next to a zero vCPU count",
    field: /spec\.vcpus: Invalid value: 0/,
    causes: [["spec.vcpus", /should be greater than or equal to 1/]],
    spec: `${pvh}  vcpus: 0\n  cpu: {cap: 300}\n`,
  },
  {
    what: "a malformed CPU pinning",
    field: /spec\.cpu\.pinning: Invalid value: "0-"/,
    causes: [["spec.cpu.pinning", /^Invalid value: "0-"/]],
    spec: `${pvh}  cpu: {pinning: "0-"}\n`,
  },
  {
    what: "a CPU pinning with a CPU number no host has",
    field: /spec\.cpu\.pinning: Invalid value: "0-99999"/,
    causes: [["spec.cpu.pinning", /^Invalid value: "0-99999"/]],
    spec: `${pvh}  cpu: {pinning: "0-99999"}\n`,
  },
  {
    what: "a negative grace period",
    field: /spec\.terminationGracePeriodSeconds: Invalid value: -1/,
    causes: [["spec.terminationGracePeriodSeconds", /should be greater than or equal to 0/]],
    spec: `${pvh}  terminationGracePeriodSeconds: -1\n`,
  },
  {
    what: "no memory at all",
    field: /spec\.memory: Required value/,
    causes: [["spec.memory", /^Required value$/]],
    spec: "  boot: {kernel: /boot/vmlinuz}\n",
  },
  { what: "no spec", field: /spec: Required value/, causes: [["spec", /^Required value$/]], spec: "" },
];

const bad: BadCase[] = domainCases.map((c, i) => {
  const { spec, ...rest } = c;
  const name = `bad-${i}`;
  return {
    ...rest,
    kind: "xendomain",
    name,
    manifest: spec ? domain(name, spec) : domain(name, "").replace(/\nspec:\n$/, "\n"),
  };
});

const balancer = (name: string, spec: string) =>
  `apiVersion: kubexen.io/v1alpha1\nkind: XenBalancer\nmetadata: {name: ${name}}\nspec: ${spec}\n`;

bad.push(
  {
    what: "a name with capitals and underscores",
    kind: "xendomain",
    name: "Web_1",
    field: /metadata\.name: Invalid value: "Web_1"/,
    causes: [["metadata.name", /^Invalid value: "Web_1": a lowercase RFC 1123 subdomain/]],
    manifest: domain("Web_1", pvh),
  },
  {
    what: "a migration without a domain",
    kind: "xenmigration",
    name: "mig-bad-1",
    field: /spec\.domain: Required value/,
    causes: [["spec.domain", /^Required value$/]],
    manifest:
      "apiVersion: kubexen.io/v1alpha1\nkind: XenMigration\nmetadata: {name: mig-bad-1, namespace: api-test}\nspec: {targetHost: xen-02}\n",
  },
  {
    what: "a migration with an unknown reason",
    kind: "xenmigration",
    name: "mig-bad-2",
    field: /spec\.reason: Unsupported value: "Whim"/,
    causes: [["spec.reason", /^Unsupported value: "Whim"/]],
    manifest:
      "apiVersion: kubexen.io/v1alpha1\nkind: XenMigration\nmetadata: {name: mig-bad-2, namespace: api-test}\nspec: {domain: web-1, reason: Whim}\n",
  },
  {
    what: "a migration to a host name that cannot exist",
    kind: "xenmigration",
    name: "mig-bad-3",
    field: /spec\.targetHost: Invalid value: "Xen 02"/,
    causes: [["spec.targetHost", /^Invalid value: "Xen 02": spec\.targetHost in body should match/]],
    manifest:
      "apiVersion: kubexen.io/v1alpha1\nkind: XenMigration\nmetadata: {name: mig-bad-3, namespace: api-test}\nspec: {domain: web-1, targetHost: Xen 02}\n",
  },
  {
    what: "a maintenance with an empty host",
    kind: "xenmaintenance",
    name: "maint-bad-1",
    field: /spec\.host: Invalid value: ""/,
    causes: [["spec.host", /^Invalid value: "": spec\.host in body should be at least 1 chars long$/]],
    manifest:
      "apiVersion: kubexen.io/v1alpha1\nkind: XenMaintenance\nmetadata: {name: maint-bad-1}\nspec: {host: ''}\n",
  },
  {
    what: "a balancer not named default",
    kind: "xenbalancer",
    name: "other",
    field: /metadata\.name: Invalid value: there is one XenBalancer per cluster and it must be named default/,
    causes: [["metadata.name", /^Invalid value: there is one XenBalancer per cluster and it must be named default$/]],
    manifest: balancer("other", "{mode: Auto}"),
  },
  {
    what: "a migration policy not named default",
    kind: "xenmigrationpolicy",
    name: "other",
    field: /metadata\.name: Invalid value: there is one XenMigrationPolicy per cluster/,
    causes: [["metadata.name", /there is one XenMigrationPolicy per cluster and it must be named default$/]],
    manifest: "apiVersion: kubexen.io/v1alpha1\nkind: XenMigrationPolicy\nmetadata: {name: other}\nspec: {}\n",
  },
  {
    what: "a balancer threshold above 1",
    kind: "xenbalancer",
    name: "default",
    field: /spec\.threshold: Invalid value: 2/,
    causes: [["spec.threshold", /should be less than or equal to 1/]],
    manifest: balancer("default", "{threshold: 2}"),
  },
  {
    what: "balancer weights that are both zero",
    kind: "xenbalancer",
    name: "default",
    field: /spec\.weights: Invalid value: .*at least one of weights\.cpu and weights\.memory must be positive/,
    causes: [["spec.weights", /at least one of weights\.cpu and weights\.memory must be positive$/]],
    manifest: balancer("default", "{weights: {cpu: 0, memory: 0}}"),
  },
  {
    what: "a negative balancer weight",
    kind: "xenbalancer",
    name: "default",
    field: /spec\.weights\.cpu: Invalid value: -1/,
    causes: [["spec.weights.cpu", /should be greater than or equal to 0/]],
    manifest: balancer("default", "{weights: {cpu: -1, memory: 0}}"),
  },
  {
    what: "a balancer in an unknown mode",
    kind: "xenbalancer",
    name: "default",
    field: /spec\.mode: Unsupported value: "Aggressive"/,
    causes: [
      ["spec.mode", /^Unsupported value: "Aggressive": supported values: "Disabled", "Recommend", "Auto", "Off"$/],
    ],
    manifest: balancer("default", "{mode: Aggressive}"),
  },
  {
    what: "a balancer mode of bare Off, which YAML 1.1 reads as false",
    kind: "xenbalancer",
    name: "default",
    field: /spec\.mode: Invalid value: "boolean": spec\.mode in body must be of type string/,
    causes: [
      ["spec.mode", /must be of type string: "boolean"$/],
      ["spec.mode", /^Unsupported value: false: supported values: "Disabled", "Recommend", "Auto", "Off"$/],
    ],
    manifest: balancer("default", "{mode: Off}"),
  },
  {
    what: "a migration policy allowing no migrations",
    kind: "xenmigrationpolicy",
    name: "default",
    field: /spec\.parallelMigrationsPerCluster: Invalid value: 0/,
    causes: [["spec.parallelMigrationsPerCluster", /should be greater than or equal to 1/]],
    manifest:
      "apiVersion: kubexen.io/v1alpha1\nkind: XenMigrationPolicy\nmetadata: {name: default}\nspec: {parallelMigrationsPerCluster: 0}\n",
  },
  {
    what: "a host cordoned with a string",
    kind: "xenhost",
    name: "xen-bad",
    field: /spec\.unschedulable: Invalid value: "string": spec\.unschedulable in body must be of type boolean/,
    causes: [["spec.unschedulable", /must be of type boolean: "string"$/]],
    manifest:
      "apiVersion: kubexen.io/v1alpha1\nkind: XenHost\nmetadata: {name: xen-bad}\nspec: {unschedulable: 'yes'}\n",
  },
);

const plurals: Record<string, string> = {
  xendomain: "xendomains",
  xenmigration: "xenmigrations",
  xenmaintenance: "xenmaintenances",
  xenbalancer: "xenbalancers",
  xenmigrationpolicy: "xenmigrationpolicies",
  xenhost: "xenhosts",
};
const namespaced = (kind: string) => kind === "xendomain" || kind === "xenmigration";
/** The API server's note when a schema error kept it from running the CEL rules: it names no field. */
const NOT_CHECKED = /some validation rules were not checked because the object was invalid/;

interface StatusCause {
  field?: string;
  message?: string;
  reason?: string;
}
interface Status {
  message?: string;
  details?: { causes?: StatusCause[] };
}

/** Reads a manifest as kubectl does: YAML 1.1, where a bare Off, yes or n is a boolean. */
const kubectlYaml = (manifest: string) => parse(manifest, { version: "1.1" }) as Record<string, unknown>;

describe("kubexen CRDs on a real API server", () => {
  let cp: ControlPlane;
  before(async () => {
    cp = await startKubexenControlPlane(["api-test"]);
  });
  after(async () => {
    await cp?.stop();
  });

  it("installs every kind, in the category xen", async () => {
    const out = await cp.kubectlOk(["api-resources", "--categories=xen", "-o", "name"]);
    assert.deepEqual(out.trim().split("\n").sort(), [
      "xenbalancers.kubexen.io",
      "xendomains.kubexen.io",
      "xenhosts.kubexen.io",
      "xenmaintenances.kubexen.io",
      "xenmigrationpolicies.kubexen.io",
      "xenmigrations.kubexen.io",
    ]);
  });

  it("applies every example file and the examples kustomization", async () => {
    const files = readdirSync(examplesDir).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml");
    assert.ok(files.length >= 7, `examples: ${files}`);
    for (const f of files) await cp.kubectlOk(["apply", "-n", "api-test", "-f", `${examplesDir}/${f}`]);
    await cp.kubectlOk(["apply", "-n", "api-test", "-k", examplesDir]);
    // GitOps sees no drift: the live objects are what the manifests say (exit 0: no differences).
    const diff = await cp.kubectl(["diff", "-n", "api-test", "-k", examplesDir]);
    assert.equal(diff.code, 0, `kubectl diff found drift:\n${diff.stdout}${diff.stderr}`);
  });

  it("fills in defaults the user left out", async () => {
    const xd = JSON.parse(await cp.kubectlOk(["get", "xd", "legacy-db", "-n", "api-test", "-o", "json"]));
    assert.equal(xd.spec.powerState, "Running");
    assert.equal(xd.spec.priority, 0);
    assert.deepEqual(xd.spec.disks[0], {
      vdev: "xvda",
      source: "/var/lib/xen/images/legacy-db.img",
      format: "raw",
      access: "rw",
      devtype: "disk",
    });
    const bal = JSON.parse(await cp.kubectlOk(["get", "xbal", "default", "-o", "json"]));
    assert.equal(bal.spec.cooldownSeconds, 1800);
  });

  /** Creates through the API (as kubectl would send it) and returns the refusal, or undefined when accepted. */
  async function create(kind: string, obj: Record<string, unknown>, dryRun = false): Promise<Status | undefined> {
    const api = cp.kubeConfig().makeApiClient(CustomObjectsApi);
    const base = {
      group: "kubexen.io",
      version: "v1alpha1",
      plural: plurals[kind] ?? kind,
      body: obj,
      fieldValidation: "Strict",
      ...(dryRun ? { dryRun: "All" } : {}),
    };
    try {
      if (namespaced(kind)) await api.createNamespacedCustomObject({ ...base, namespace: "api-test" });
      else await api.createClusterCustomObject(base);
      return undefined;
    } catch (e) {
      const body = (e as { body?: unknown }).body;
      if (body === undefined) throw e;
      return (typeof body === "string" ? JSON.parse(body) : body) as Status;
    }
  }

  for (const c of bad) {
    it(`rejects ${c.what}, naming the field, and stores nothing`, async () => {
      const r = await cp.kubectl(["create", "-f", "-"], { input: c.manifest });
      assert.notEqual(r.code, 0, `accepted:\n${c.manifest}`);
      assert.match(r.stderr, c.field);
      assert.doesNotMatch(r.stderr, /evaluating rule|evaluation error|no such overload|no matching overload/);
      if (c.causes) {
        const status = await create(c.kind, kubectlYaml(c.manifest), true);
        assert.ok(status, `accepted through the API:\n${c.manifest}`);
        const causes = (status.details?.causes ?? []).filter((x) => !NOT_CHECKED.test(x.message ?? ""));
        for (const x of status.details?.causes ?? [])
          if (NOT_CHECKED.test(x.message ?? ""))
            assert.ok(!x.field || x.field === "<nil>", `the note names a field: ${JSON.stringify(x)}`);
        const shown = JSON.stringify(status.details?.causes, null, 1);
        assert.equal(causes.length, c.causes.length, `causes:\n${shown}`);
        const left = [...c.causes];
        for (const x of causes) {
          assert.doesNotMatch(x.message ?? "", /evaluating rule|evaluation error|overload/, `causes:\n${shown}`);
          const i = left.findIndex(([f, m]) => f === x.field && m.test(x.message ?? ""));
          assert.ok(i >= 0, `unexpected cause ${JSON.stringify(x)}; causes:\n${shown}`);
          left.splice(i, 1);
        }
      }
      const ns = namespaced(c.kind) ? ["-n", "api-test"] : [];
      const get = await cp.kubectl(["get", c.kind, c.name, ...ns, "--ignore-not-found", "-o", "name"]);
      if (c.name !== "default") assert.equal(get.stdout.trim(), "", `${c.kind}/${c.name} was stored`);
    });
  }

  it("accepts memory in fractions of a GiB that are whole MiB", async () => {
    const pairs: Array<[string, string]> = [
      ["1.5Gi", "2.5Gi"],
      ["0.5Gi", "0.75Gi"],
      ["1536Mi", "1.5Gi"],
      [String(1536 * 2 ** 20), "16Ti"],
    ];
    for (const [memory, maxMemory] of pairs) {
      const m = domain("fraction", `${pvh.replace("512Mi", memory)}  maxMemory: ${maxMemory}\n`);
      const status = await create("xendomain", kubectlYaml(m), true);
      assert.equal(status, undefined, `memory ${memory}, maxMemory ${maxMemory}: ${JSON.stringify(status)}`);
    }
    // and through kubectl, stored as written
    await cp.kubectlOk(["create", "-f", "-"], {
      input: domain("half-gib", "  memory: 0.5Gi\n  maxMemory: 1.5Gi\n  boot: {kernel: /boot/vmlinuz}\n"),
    });
    const xd = JSON.parse(await cp.kubectlOk(["get", "xd", "half-gib", "-n", "api-test", "-o", "json"]));
    assert.equal(xd.spec.memory, "0.5Gi");
    assert.equal(xd.spec.maxMemory, "1.5Gi");
    await cp.kubectlOk([
      "patch",
      "xd",
      "half-gib",
      "-n",
      "api-test",
      "--type=merge",
      "-p",
      '{"metadata":{"finalizers":null}}',
    ]);
    await cp.kubectlOk(["delete", "xd", "half-gib", "-n", "api-test"]);
  });

  it("accepts what the tight formats still allow, with memory in a fraction of a GiB", async () => {
    const spec = [
      "  type: hvm",
      "  memory: 1.5Gi",
      "  boot: {kernel: /var/lib/kubexen/images/vmlinuz-6.1+deb12, ramdisk: /var/lib/kubexen/images/.initrd..img@1:2,",
      `    cmdline: "console=hvc0 root=/dev/xvda1 ro init='/sbin/init' quiet=\\"yes\\" ünïcode ✓"}`,
      "  disks:",
      "    - {vdev: hda, source: /var/lib/xen/images/winsrv-1.qcow2, format: qcow2}",
      "    - {vdev: hdc, source: /var/lib/xen/images/...iso, access: ro, devtype: cdrom}",
      "  networks: [{bridge: br-lan.10, ip: 192.0.2.10}, {bridge: xenbr_1, ip: 255.255.255.255}, {bridge: x, ip: 0.0.0.0}]",
      '  cpu: {pinning: "0-3,8,4095"}',
    ].join("\n");
    const status = await create("xendomain", kubectlYaml(domain("tight-ok", `${spec}\n`)), true);
    assert.equal(status, undefined, JSON.stringify(status));
    const pv = domain("pv-ok", "  type: pv\n  memory: 1Gi\n  boot: {bootloader: pygrub}\n");
    assert.equal(await create("xendomain", kubectlYaml(pv), true), undefined);
  });

  it("takes balancer modes written in YAML as kubectl reads it (YAML 1.1) as strings, the deprecated Off quoted", async () => {
    const api = cp.kubeConfig().makeApiClient(CustomObjectsApi);
    const ref = { group: "kubexen.io", version: "v1alpha1", plural: "xenbalancers", name: "default" };
    for (const mode of ["Disabled", "Recommend", "Auto", '"Off"']) {
      const manifest = balancer("default", `{mode: ${mode}}`);
      const obj = kubectlYaml(manifest);
      const spec = obj.spec as { mode: unknown };
      assert.equal(typeof spec.mode, "string", `${mode} parsed as ${typeof spec.mode}`);
      // the singleton exists (from the examples): replace it, without storing
      const live = (await api.getClusterCustomObject(ref)) as { metadata: { resourceVersion: string } };
      (obj.metadata as Record<string, unknown>).resourceVersion = live.metadata.resourceVersion;
      await api.replaceClusterCustomObject({ ...ref, body: obj, dryRun: "All", fieldValidation: "Strict" });
      // and through kubectl, which parses the manifest with YAML 1.1 itself
      const r = await cp.kubectl(["apply", "--dry-run=server", "-f", "-"], { input: manifest });
      assert.equal(r.code, 0, `${mode}: ${r.stderr}`);
    }
    // the old name unquoted, as YAML 1.1 reads it: a boolean
    assert.equal((kubectlYaml(balancer("default", "{mode: Off}")).spec as { mode: unknown }).mode, false);
  });

  it("keeps the balancer and policy singletons as the examples set them", async () => {
    const bal = JSON.parse(await cp.kubectlOk(["get", "xbal", "default", "-o", "json"]));
    assert.equal(bal.spec.mode, "Auto");
    const pol = JSON.parse(await cp.kubectlOk(["get", "xmp", "default", "-o", "json"]));
    assert.equal(pol.spec.parallelMigrationsPerCluster, 5);
  });

  it("refuses to change a domain's type after creation", async () => {
    const r = await cp.kubectl([
      "patch",
      "xd",
      "web-1",
      "-n",
      "api-test",
      "--type=merge",
      "-p",
      '{"spec":{"type":"hvm"}}',
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /spec\.type: Forbidden: type is immutable/);
    const ok = await cp.kubectl([
      "patch",
      "xd",
      "web-1",
      "-n",
      "api-test",
      "--type=merge",
      "-p",
      '{"spec":{"vcpus":3}}',
    ]);
    assert.equal(ok.code, 0, ok.stderr);
  });

  it("refuses any change to a migration's spec", async () => {
    const r = await cp.kubectl([
      "patch",
      "xmig",
      "web-1-to-xen-02",
      "-n",
      "api-test",
      "--type=merge",
      "-p",
      '{"spec":{"targetHost":"xen-03"}}',
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /spec: Forbidden: spec is immutable/);
  });

  it("refuses to move a maintenance to another host", async () => {
    const r = await cp.kubectl(["patch", "xmaint", "xen-01", "--type=merge", "-p", '{"spec":{"host":"xen-02"}}']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /spec\.host: Forbidden: host is immutable/);
  });

  it("stores status only through the status subresource", async () => {
    const api = cp.kubeConfig().makeApiClient(CustomObjectsApi);
    const ref = {
      group: "kubexen.io",
      version: "v1alpha1",
      namespace: "api-test",
      plural: "xendomains",
      name: "web-1",
    };
    // A status in a main-resource update is ignored...
    await cp.kubectlOk([
      "patch",
      "xd",
      "web-1",
      "-n",
      "api-test",
      "--type=merge",
      "-p",
      '{"status":{"host":"xen-09"}}',
    ]);
    let xd = (await api.getNamespacedCustomObject(ref)) as { status?: { host?: string } };
    assert.equal(xd.status?.host, undefined);
    // ...and taken through /status.
    await cp.kubectlOk([
      "patch",
      "xd",
      "web-1",
      "-n",
      "api-test",
      "--subresource=status",
      "--type=merge",
      "-p",
      '{"status":{"host":"xen-02","phase":"Running"}}',
    ]);
    xd = (await api.getNamespacedCustomObject(ref)) as { status?: { host?: string } };
    assert.equal(xd.status?.host, "xen-02");
    // Status is validated too.
    const r = await cp.kubectl([
      "patch",
      "xd",
      "web-1",
      "-n",
      "api-test",
      "--subresource=status",
      "--type=merge",
      "-p",
      '{"status":{"phase":"Sleepy"}}',
    ]);
    assert.match(r.stderr, /status\.phase: Unsupported value: "Sleepy"/);
  });

  it("shows printer columns and filters by selectable fields", async () => {
    const table = await cp.kubectlOk(["get", "xd", "-n", "api-test"]);
    assert.match(table.split("\n")[0] ?? "", /^NAME\s+PHASE\s+HOST\s+VCPUS\s+MEMORY\s+READY\s+AGE/);
    assert.match(table, /web-1\s+Running\s+xen-02\s+3\s+1Gi/);
    const onHost = await cp.kubectlOk([
      "get",
      "xd",
      "-n",
      "api-test",
      "--field-selector=status.host=xen-02",
      "-o",
      "name",
    ]);
    assert.equal(onHost.trim(), "xendomain.kubexen.io/web-1");
    const pv = await cp.kubectlOk(["get", "xd", "-n", "api-test", "--field-selector=spec.type=pv", "-o", "name"]);
    assert.equal(pv.trim(), "xendomain.kubexen.io/legacy-db");
    const hostTable = await cp.kubectlOk(["get", "xmaint"]);
    assert.match(
      hostTable.split("\n")[0] ?? "",
      /^NAME\s+HOST\s+PHASE\s+REMAINING\s+MIGRATED\s+RESTARTED\s+BLOCKED\s+AGE/,
    );
  });

  it("sets the domain finalizer at creation, which a server-side re-apply keeps and a user's finalizer joins", async () => {
    await cp.kubectlOk(["create", "namespace", "api-fin"]);
    const manifest = (memory: string, finalizers = "") =>
      `apiVersion: kubexen.io/v1alpha1\nkind: XenDomain\nmetadata: {name: gitops, namespace: api-fin${finalizers}}\nspec: {memory: ${memory}, boot: {kernel: /boot/vmlinuz}}\n`;
    const apply = (m: string) =>
      cp.kubectlOk(["apply", "--server-side", "--field-manager=argocd-controller", "-f", "-"], { input: m });
    const get = async () =>
      JSON.parse(await cp.kubectlOk(["get", "xd", "gitops", "-n", "api-fin", "-o", "json", "--show-managed-fields"]));
    await apply(manifest("1Gi"));
    let xd = await get();
    // No operator runs here: the API server set it.
    assert.deepEqual(xd.metadata.finalizers, ["kubexen.io/domain"]);
    const owned = JSON.stringify(
      xd.metadata.managedFields.find((m: { manager: string }) => m.manager === "argocd-controller"),
    );
    assert.doesNotMatch(owned, /finalizers/, "the applier does not own the finalizer");
    await apply(manifest("2Gi"));
    xd = await get();
    assert.equal(xd.spec.memory, "2Gi");
    assert.deepEqual(xd.metadata.finalizers, ["kubexen.io/domain"], "kept by the next apply");
    // A domain created with a finalizer of its own gets ours beside it, once.
    await cp.kubectlOk(["apply", "-f", "-"], {
      input: manifest("1Gi", ", finalizers: [example.com/backup]").replace("gitops", "own"),
    });
    const own = JSON.parse(await cp.kubectlOk(["get", "xd", "own", "-n", "api-fin", "-o", "json"]));
    assert.deepEqual(own.metadata.finalizers, ["example.com/backup", "kubexen.io/domain"]);
    // Cleanup without an operator: drop the finalizers, then delete.
    for (const n of ["gitops", "own"]) {
      await cp.kubectlOk(["patch", "xd", n, "-n", "api-fin", "--type=merge", "-p", '{"metadata":{"finalizers":null}}']);
      await cp.kubectlOk(["delete", "xd", n, "-n", "api-fin"]);
    }
  });

  it("holds only the valid objects after all the bad ones", async () => {
    const names = (await cp.kubectlOk(["get", "xd", "-n", "api-test", "-o", "name"])).trim().split("\n").sort();
    assert.deepEqual(names, [
      "xendomain.kubexen.io/legacy-db",
      "xendomain.kubexen.io/web-1",
      "xendomain.kubexen.io/winsrv-1",
    ]);
  });
});
