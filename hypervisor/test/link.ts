import { connect, createServer, type Socket } from "node:net";

/** A real loopback TCP connection: migration bytes cross a socket, as between hosts. */
export async function tcpPair(): Promise<[Socket, Socket]> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const accepted = new Promise<Socket>((r) => server.once("connection", r));
  const client = connect((server.address() as { port: number }).port, "127.0.0.1");
  const peer = await accepted;
  server.close();
  return [client, peer];
}
