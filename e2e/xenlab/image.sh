#!/usr/bin/env bash
# Builds the lab's dom0 disk image: the cached Debian root filesystem (lib.sh) plus Node 24, the
# node agent with its production dependencies, the hypervisor package's tests (the conformance
# suite runs in dom0) and the lab host's init (lab-init.sh). Rebuilt only when an input changes:
# the image's directory is named by a hash of every input. Prints that directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${KUBEXEN_CACHE:-$HOME/.cache/kubexen}/xenlab
source "$here/lib.sh"
cd "$root"
node=$root/node_modules/node/bin/node
inputs() {
  printf '%s\n' "$dom0_packages" "$kver" "$("$node" --version)"
  find e2e/xenlab/lib.sh e2e/xenlab/image.sh e2e/xenlab/lab-init.sh e2e/xenlab/guest-kernel.config package.json package-lock.json \
    crds/package.json crds/src sdk/package.json sdk/src hypervisor/package.json hypervisor/src hypervisor/test \
    node-agent/package.json node-agent/src -type f | LC_ALL=C sort | xargs sha256sum
}
hash=$(inputs | sha256sum | cut -c1-16)
out=$cache/image-$hash
if [ -f "$out/dom0.img" ] && [ -f "$out/xen.elf" ]; then echo "$out"; exit 0; fi
ensure_packages
mkdir -p "$cache"
base_rootfs
rootfs=$cache/rootfs
app=$rootfs/opt/kubexen
rm -rf "$app" && mkdir -p "$app/node_modules/@kubexen" "$rootfs/usr/local/bin"
install -m 0755 "$node" "$rootfs/usr/local/bin/node"
# The agent's production dependency tree, as npm resolved it here. Workspace packages keep their
# place beside node_modules (Node strips types only outside node_modules).
cp package.json "$app/"
for pkg in crds sdk hypervisor node-agent; do
  mkdir -p "$app/$pkg"
  cp -a "$pkg/package.json" "$pkg/src" "$app/$pkg/"
  ln -s "../../$pkg" "$app/node_modules/@kubexen/$pkg"
done
cp -a hypervisor/test "$app/hypervisor/"
npm ls --omit=dev --all --parseable -w @kubexen/node-agent 2>/dev/null | LC_ALL=C sort -u |
  while read -r dir; do
    rel=${dir#"$root"/}
    case "$rel" in node_modules/@kubexen/* | "$root" | node_modules/node) continue ;; node_modules/*) ;; *) continue ;; esac
    mkdir -p "$app/$(dirname "$rel")"
    [ -e "$app/$rel" ] || cp -a "$dir" "$app/$rel"
  done
install -m 0755 "$here/lab-init.sh" "$rootfs/sbin/kubexen-lab-init"
# The agent's 1,500 modules compiled into Node's compile cache once, here, by dom0's own Node and
# paths: an emulated dom0 takes 110 s to load them cold and 61 s with the cache.
rm -rf "$rootfs/var/cache/kubexen/node-compile-cache"
chroot "$rootfs" env -u NODE_EXTRA_CA_CERTS sh -c 'cd /opt/kubexen && NODE_COMPILE_CACHE=/var/cache/kubexen/node-compile-cache node -e "
  for (const m of [\"./node-agent/src/agent.ts\", \"./node-agent/src/fence.ts\", \"@kubexen/hypervisor\", \"@kubernetes/client-node\"])
    await import(m);"'
mkdir -p "$rootfs/etc/xen" "$rootfs/etc/kubexen" "$rootfs/var/lib/kubexen"
printf 'autoballoon="off"\n' > "$rootfs/etc/xen/xl.conf"
# xenconsoled logs every guest's console to /var/log/xen/console/guest-<name>.log.
grep -q '^XENCONSOLED_ARGS=' "$rootfs/etc/default/xen" || echo 'XENCONSOLED_ARGS="--log=guest"' >> "$rootfs/etc/default/xen"
# One image at a time: older ones go.
rm -rf "$cache"/image-*
tmp=$out.tmp
mkdir -p "$tmp"
mkfs.ext4 -q -F -L dom0 -d "$rootfs" "$tmp/dom0.img" 3G
cp "$cache/xen.elf" "/boot/vmlinuz-$kver" "/boot/initrd.img-$kver" "$tmp/"
ln -s "vmlinuz-$kver" "$tmp/vmlinuz"
ln -s "initrd.img-$kver" "$tmp/initrd.img"
mv "$tmp" "$out"
echo "$out"
