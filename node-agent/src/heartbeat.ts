// The agent's heartbeat: a coordination.k8s.io Lease renewed every
// `intervalMs`, as kubelet renews its node Lease. The operator reads it to
// tell Ready from NotReady hosts.
import { errorMessage, isNotFound, type KubeClient, type Logger, microTime } from "@kubexen/sdk";

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string };
}

export class Heartbeat {
  private readonly client: KubeClient;
  private readonly o: {
    namespace: string;
    name: string;
    holder: string;
    intervalMs: number;
    durationSeconds: number;
    log: Logger;
    onRenew: (at: number) => void;
  };
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  lastRenew: number | undefined;

  constructor(client: KubeClient, o: Heartbeat["o"]) {
    this.client = client;
    this.o = o;
  }

  async renew(): Promise<void> {
    const { namespace, name } = this.o;
    const path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`;
    const now = Date.now();
    const spec = {
      holderIdentity: this.o.holder,
      leaseDurationSeconds: this.o.durationSeconds,
      renewTime: microTime(now),
    };
    const timeoutMs = Math.max(1000, this.o.intervalMs);
    try {
      const lease = await this.client.request<Lease>("GET", `${path}/${name}`, { timeoutMs });
      await this.client.request("PUT", `${path}/${name}`, {
        timeoutMs,
        body: { ...lease, spec: { ...lease.spec, ...spec } },
      });
    } catch (e) {
      if (!isNotFound(e)) throw e;
      await this.client.request("POST", path, {
        timeoutMs,
        body: {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace },
          spec: { ...spec, acquireTime: microTime(now) },
        },
      });
    }
    this.lastRenew = now;
    this.o.onRenew(now);
  }

  start(): void {
    const loop = async () => {
      if (this.stopped) return;
      try {
        await this.renew();
      } catch (err) {
        this.o.log.warn({ err: errorMessage(err) }, "heartbeat renewal failed");
      }
      if (!this.stopped) {
        this.timer = setTimeout(loop, this.o.intervalMs);
        this.timer.unref();
      }
    };
    void loop();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
