#!/bin/sh
# dom0's init on a lab host (PID 1). Brings up Xen's daemons, the host's networks from its config
# disk (/dev/vdb: host.env, the agent's kubeconfig and migration certificates), a command port for
# the test harness, the guests' consoles on the serial console, and the node agent as a service
# that is restarted when it exits. Everything it prints reaches the harness through the serial
# console, which keeps working when the host is cut off the network.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts /run /var/log/xen/console /etc/kubexen /tmp
mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp
mkdir -p /run/xen /run/xenstored /run/lab /run/lock
say() { echo "kubexen-lab: $*" > /dev/console; }
for m in xenfs xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xen-blkback xen-netback; do modprobe $m; done
mount -t xenfs xenfs /proc/xen
mount -o ro /dev/vdb /etc/kubexen || say "no config disk"
. /etc/kubexen/host.env
hostname "$HOST"
# xenconsoled keeps each guest's console in /var/log/xen/console/guest-<name>.log
# (XENCONSOLED_ARGS=--log=guest in /etc/default/xen).
/etc/init.d/xen start > /dev/console 2>&1
# dom0 shares the one CPU with the guests: four times their weight keeps the agent (and with it the
# watchdog's feeding) responsive while guests boot, as Xen's tuning advice has it for dom0.
xl sched-credit2 -d 0 -w 1024 > /dev/console 2>&1
ip link set lo up
ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 up && ip route add default via 10.0.2.2
# Links to peers: point-to-point, one per peer. The host's address is on every link, with a
# route to each peer's address through the link to that peer. The links carry 64 KiB frames (QEMU's
# UDP socket backend takes a frame per datagram): each frame costs the emulated dom0 the same
# however large, and with 1500-byte frames TCP between two hosts ran at 2.3 MB/s, with these at 5.
for l in $LINKS; do
  dev=${l%%:*}; peer=${l#*:}
  ip link set "$dev" mtu 65000 up
  ip addr add "$ADDR/32" dev "$dev"
  ip route add "$peer/32" dev "$dev" src "$ADDR"
done
# The harness's command port: a shell per connection, reached through QEMU's port forwarding.
# -t: the harness half-closes after sending; the answer may take minutes.
socat -t 3600 TCP-LISTEN:7000,reuseaddr,fork EXEC:/bin/sh > /dev/null 2>&1 &
# Every guest console, line by line, on the serial console: "[guest-<name>.log] <line>".
(
  cd /var/log/xen/console
  while true; do
    for f in guest-*.log; do
      [ -e "$f" ] && [ ! -e "/run/lab/$f" ] || continue
      touch "/run/lab/$f"
      tail -n +1 -F "$f" 2>/dev/null | sed -u "s/^/[$f] /" > /dev/console &
    done
    sleep 1
  done
) &
say "host $HOST up, dom0 $(uname -r), $(xl info 2>/dev/null | grep -E '^xen_version' | tr -s ' ')"
# The agent as a service: restarted when it exits, as systemd's Restart=always would. The lab's
# guests boot the kernel and initrd in /guest (lib.sh): the one directory the agent allows. Node's
# compile cache (filled when the image was built, image.sh) as the unit file has it.
export NODE_COMPILE_CACHE=/var/cache/kubexen/node-compile-cache
while true; do
  if [ -e /run/lab/agent-paused ]; then sleep 1; continue; fi
  say "starting the node agent"
  node /opt/kubexen/node-agent/src/main.ts --host "$HOST" --driver xl --kubeconfig /etc/kubexen/kubeconfig \
    --migration-endpoint "$ADDR:9443" --migration-listen 0.0.0.0:9443 \
    --tls-cert /etc/kubexen/tls.crt --tls-key /etc/kubexen/tls.key --tls-ca /etc/kubexen/ca.crt \
    --allowed-path-root /guest $AGENT_ARGS 2>&1 | tee -a /var/log/kubexen-agent.log | sed -u 's/^/[agent] /' > /dev/console
  say "node agent exited"
  sleep 1
done
