#!/usr/bin/env bash
# Records what xl prints on a real Xen 4.17 host into hypervisor/test/fixtures/recorded/, for the
# xl driver's parser tests. It builds a Debian bookworm dom0 image (debootstrap, cached under
# ~/.cache/kubexen/xenlab), boots Xen under QEMU's software emulation (TCG: no KVM needed), runs
# record-init.sh as dom0's init (xl info, list, create of a PVH guest, pause, error cases), reads
# the results from the serial console, and powers off. About 4 minutes the first time, 2 after.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${KUBEXEN_CACHE:-$HOME/.cache/kubexen}/xenlab
out=$root/hypervisor/test/fixtures/recorded
source "$here/lib.sh"
ensure_packages
mkdir -p "$cache"
base_rootfs
install -m 0755 "$here/record-init.sh" "$cache/rootfs/sbin/lab-init"
mkfs.ext4 -q -F -d "$cache/rootfs" "$cache/dom0.img" 2G
log=$cache/boot.log
qemu-system-x86_64 -accel tcg -cpu qemu64,+svm,+npt -smp 2 -m 1536 -nographic -no-reboot \
  -kernel "$cache/xen.elf" -append "dom0_mem=768M console=com1 noreboot" \
  -initrd "/boot/vmlinuz-$kver root=/dev/vda rw console=hvc0 net.ifnames=0 init=/sbin/lab-init,/boot/initrd.img-$kver" \
  -drive "file=$cache/dom0.img,if=virtio,format=raw" > "$log" 2>&1 < /dev/null &
qemu=$!
trap 'kill $qemu 2>/dev/null || true' EXIT
# Xen halts (noreboot) once dom0 powers off; QEMU then idles, so stop it when the log says done.
for _ in $(seq 1 900); do
  grep -q "=====DONE" "$log" && break
  kill -0 $qemu 2>/dev/null || break
  sleep 1
done
kill $qemu 2>/dev/null || true
grep -q "=====DONE" "$log" || { echo "record-xl: the host did not finish; see $log" >&2; exit 1; }
mkdir -p "$out"
python3 - "$log" "$out" <<'PY'
import re, sys
log = open(sys.argv[1], "rb").read().decode("utf8", "replace").replace("\r\n", "\n").replace("\r", "")
blocks = {k: "\n".join(l for l in v.split("\n") if not re.match(r"^\[\s*\d+\.\d+\]", l)) for k, v in re.findall(r"=====BEGIN (\S+)\n(.*?)=====END", log, re.S)}
files = {
    "xl-info.txt": "xl-info", "xl-list-v-dom0-only.txt": "xl-list-v-empty", "xl-list-v-running.txt": "xl-list-v",
    "xl-list-v-paused.txt": "xl-pause", "xl-list-l-pvh.json": "xl-list-l", "xl-list-l-all.json": "xl-list-l-all",
    "stderr-create-duplicate-name.txt": "xl-create-dup", "stderr-mem-set-beyond-max.txt": "xl-mem-set-bad",
    "stderr-destroy-unknown.txt": "xl-destroy-missing", "stderr-create-missing-kernel.txt": "xl-create-missing-kernel",
    "xl-list-v-after-destroy.txt": "xl-list-v-after",
}
for name, key in files.items():
    text = re.sub(r"\nrc=\d+\s*$", "", blocks[key].rstrip("\n")).rstrip("\n")
    open(f"{sys.argv[2]}/{name}", "w").write(text + "\n")
    print("recorded", name)
PY
