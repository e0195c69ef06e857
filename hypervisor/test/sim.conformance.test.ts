import { SimHypervisor } from "../src/index.ts";
import { conformanceSuite, guestSpec } from "./conformance.ts";
import { tcpPair } from "./link.ts";

conformanceSuite("sim", {
  hosts: async () => [
    new SimHypervisor({ hostname: "sim-a", memoryMiB: 8192, files: ["/boot/vmlinuz", "/boot/initrd.img"] }),
    new SimHypervisor({ hostname: "sim-b", memoryMiB: 8192, files: ["/boot/vmlinuz", "/boot/initrd.img"] }),
  ],
  spec: guestSpec({ kernel: "/boot/vmlinuz", ramdisk: "/boot/initrd.img" }, 64),
  link: tcpPair,
  unmigratableType: "pv",
});
