// The conformance suite against the xl driver, run in the dom0 of a real Xen
// host of the lab (e2e/test/xenlab.test.ts runs it there; xl works only in a
// dom0). Both "hosts" are this machine: xl migrates to localhost over a real
// TCP connection, as OSSTest's local migration does.
import { XlHypervisor } from "../src/index.ts";
import { conformanceSuite, guestSpec } from "./conformance.ts";
import { tcpPair } from "./link.ts";

// The lab's guests' size (e2e/xenlab/README.md).
const GUEST_MIB = 128;
const xl = new XlHypervisor();
conformanceSuite("xl on a lab host", {
  hosts: async () => [xl, xl],
  sameHost: true,
  spec: guestSpec({ kernel: "/guest/vmlinuz", ramdisk: "/guest/initrd" }, GUEST_MIB),
  link: tcpPair,
  unmigratableType: "pv",
  opTimeoutMs: 120_000,
  // The test guest (e2e/xenlab/guest-kernel.config) boots in one to two minutes on a lab host.
  guestBootMs: 360_000,
  // The test guest's init prints its counter once its kernel, PV drivers included, is up.
  booted: async (hv, uuid) => /kubexen-guest alive/.test(await hv.consoleLog(uuid)),
  guestMemoryMiB: GUEST_MIB,
});
