#!/bin/sh
# dom0's init for record-xl.sh: starts Xen's daemons, runs the xl commands whose output the
# parser tests read (between =====BEGIN/=====END markers on the console), and powers off.
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mkdir -p /dev/pts /run /var/run /var/lock /var/log/xen; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /run
for m in xenfs xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xen-blkback xen-netback; do modprobe $m; done
mount -t xenfs xenfs /proc/xen
/etc/init.d/xen start >/dev/null 2>&1
sleep 1
echo "=====BEGIN xl-info"; xl info; echo "=====END"
echo "=====BEGIN xl-list-v-empty"; xl list -v; echo "=====END"
cat > /tmp/g.cfg <<CFG
name = "rec-guest"
uuid = "5a9f1d2e-7c3b-4e8a-9f10-2b3c4d5e6f70"
type = "pvh"
kernel = "/guest/vmlinuz"
ramdisk = "/guest/initrd"
extra = "console=hvc0"
memory = 128
maxmem = 128
vcpus = 1
on_crash = "preserve"
CFG
echo "=====BEGIN xl-create"; xl create /tmp/g.cfg 2>&1; echo "rc=$?"; echo "=====END"
sleep 3
echo "=====BEGIN xl-list-v"; xl list -v; echo "=====END"
echo "=====BEGIN xl-list-l"; xl list -l rec-guest; echo "=====END"
echo "=====BEGIN xl-list-l-all"; xl list -l; echo "=====END"
echo "=====BEGIN xl-pause"; xl pause rec-guest; xl list -v; echo "=====END"
xl unpause rec-guest
echo "=====BEGIN xl-create-dup"; xl create /tmp/g.cfg 2>&1; echo "rc=$?"; echo "=====END"
echo "=====BEGIN xl-mem-set-bad"; xl mem-set rec-guest 999999m 2>&1; echo "rc=$?"; echo "=====END"
echo "=====BEGIN xl-destroy-missing"; xl destroy no-such-domain 2>&1; echo "rc=$?"; echo "=====END"
xl destroy rec-guest
echo "=====BEGIN xl-list-v-after"; xl list -v; echo "=====END"
echo "=====BEGIN xl-create-missing-kernel"; sed -i 's#/guest/vmlinuz#/guest/nope#' /tmp/g.cfg; xl create /tmp/g.cfg 2>&1; echo "rc=$?"; echo "=====END"
echo "=====DONE"
echo o > /proc/sysrq-trigger
