import { connect, createServer, type Socket } from "node:net";
import { SimHypervisor } from "../src/index.ts";
import { conformanceSuite } from "./conformance.ts";

/** A real loopback TCP connection: the sim's migration bytes cross a socket. */
async function tcpPair(): Promise<[Socket, Socket]> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => server.once("connection", r));
  const client = connect(port, "127.0.0.1");
  const peer = await accepted;
  server.close();
  return [client, peer];
}

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
