// A TCP proxy on loopback in front of the API server, one per client whose
// access a test cuts: while cut, its open connections are reset and new ones
// are closed at once, as a broken network path would look to the client.
import { createConnection, createServer, type Server, type Socket } from "node:net";

export class TcpProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private cutUntil = 0;
  /** The loopback port clients connect to (0 until started). */
  port = 0;

  private readonly targetPort: number;

  constructor(targetPort: number) {
    this.targetPort = targetPort;
    this.server = createServer((client) => {
      if (this.isCut()) {
        client.resetAndDestroy();
        return;
      }
      const upstream = createConnection({ host: "127.0.0.1", port: this.targetPort });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        // A reset on either side ends both; errors are what a cut is meant to cause.
        s.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, "127.0.0.1", () => resolve());
    });
    const addr = this.server.address();
    if (!addr || typeof addr === "string") throw new Error("proxy: no port");
    this.port = addr.port;
    return this.port;
  }

  isCut(): boolean {
    return Date.now() < this.cutUntil;
  }

  /** Cuts the path for `ms`: every open connection is reset, new ones too until then. */
  cut(ms: number): void {
    this.cutUntil = Date.now() + ms;
    for (const s of this.sockets) s.resetAndDestroy();
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
