// The conformance suite against the xl driver, run in the dom0 of a real Xen
// host of the lab (e2e/test/xenlab.test.ts runs it there; xl works only in a
// dom0). Both "hosts" are this machine: xl migrates to localhost over a real
// TCP connection, as OSSTest's local migration does.
import { XlHypervisor } from "../src/index.ts";
import { conformanceSuite } from "./conformance.ts";
import { tcpPair } from "./link.ts";

const xl = new XlHypervisor();
conformanceSuite("xl on a lab host", {
  hosts: async () => [xl, xl],
  sameHost: true,
  spec: (o = {}) => ({
    type: "pvh",
    vcpus: 1,
    memory: "128Mi",
    boot: { kernel: "/guest/vmlinuz", ramdisk: "/guest/initrd", cmdline: "console=hvc0" },
    priority: 0,
    runStrategy: "Always",
    powerState: "Running",
    evictionStrategy: "LiveMigrateIfPossible",
    terminationGracePeriodSeconds: 30,
    ...o,
  }),
  link: tcpPair,
  unmigratableType: "pv",
  opTimeoutMs: 120_000,
  guestMemoryMiB: 128,
});
