// The agent's heartbeat: a coordination.k8s.io Lease renewed every
// `intervalMs`, as kubelet renews its node Lease. The operator reads it to
// tell Ready from NotReady hosts. Like kubelet, it renews with one update of
// the Lease it last wrote, and reads it again only when that update conflicts.
import { errorMessage, isConflict, isNotFound, type KubeClient, type Logger, microTime } from "@kubexen/sdk";

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
  /** The Lease as last written: the next renewal updates it without reading it first. */
  private lease: Lease | undefined;

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
      if (this.lease) {
        try {
          this.lease = await this.client.request<Lease>("PUT", `${path}/${name}`, {
            timeoutMs,
            body: { ...this.lease, spec: { ...this.lease.spec, ...spec } },
          });
        } catch (e) {
          // Changed by someone else (or gone): read it again below.
          this.lease = undefined;
          if (!isConflict(e) && !isNotFound(e)) throw e;
        }
      }
      if (!this.lease) {
        const lease = await this.client.request<Lease>("GET", `${path}/${name}`, { timeoutMs });
        this.lease = await this.client.request<Lease>("PUT", `${path}/${name}`, {
          timeoutMs,
          body: { ...lease, spec: { ...lease.spec, ...spec } },
        });
      }
    } catch (e) {
      if (!isNotFound(e)) throw e;
      this.lease = await this.client.request<Lease>("POST", path, {
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
