import { SimHypervisor } from "../src/index.ts";
import { conformanceSuite } from "./conformance.ts";
import { tcpPair } from "./link.ts";

conformanceSuite("sim", {
  hosts: async () => [
    new SimHypervisor({ hostname: "sim-a", memoryMiB: 8192, files: ["/boot/vmlinuz", "/boot/initrd.img"] }),
    new SimHypervisor({ hostname: "sim-b", memoryMiB: 8192, files: ["/boot/vmlinuz", "/boot/initrd.img"] }),
  ],
  spec: (o = {}) => ({
    type: "pvh",
    vcpus: 1,
    memory: "64Mi",
    boot: { kernel: "/boot/vmlinuz", ramdisk: "/boot/initrd.img", cmdline: "console=hvc0" },
    priority: 0,
    runStrategy: "Always",
    powerState: "Running",
    evictionStrategy: "LiveMigrateIfPossible",
    terminationGracePeriodSeconds: 30,
    ...o,
  }),
  link: tcpPair,
  unmigratableType: "pv",
});
