# Shared by the lab's scripts (sourced): the outer machine's packages, the cached
# Debian dom0 root filesystem, the hypervisor binary and the test guest.
# Callers set: root (the repository), cache (the lab's cache directory).
kver=$(basename "$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)" | sed 's/^vmlinuz-//')
# tcpdump: the migration benchmark records the streams between the hosts (bench/src/lab-migration.ts).
# linux-source-6.1 and its build tools: the test guest's kernel (guest_kernel below).
lab_packages=(qemu-system-x86 qemu-utils xen-hypervisor-4.17-amd64 xen-utils-4.17 linux-image-amd64 busybox-static debootstrap e2fsprogs cpio tcpdump
  linux-source-6.1 gcc make flex bison bc libelf-dev xz-utils)
dom0_packages=xen-utils-4.17,kmod,iproute2,procps,socat,util-linux

ensure_packages() {
  local missing=() p
  for p in "${lab_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "xenlab: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || {
      apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    }
  fi
  kver=$(basename "$(ls /boot/vmlinuz-* | sort -V | tail -1)" | sed 's/^vmlinuz-//')
}

# The test guest's kernel: Debian's 6.1 source built with tinyconfig and e2e/xenlab/guest-kernel.config,
# cached under a key of both. Debian's own kernel, every driver built in, took six to seven minutes
# to boot on an emulated lab host (its initcalls crawl on a vCPU that shares one emulated CPU with
# dom0) and now and then stalled for minutes at its clocksource switch; this one boots in seconds.
# Sets guest_kernel_path to its bzImage.
guest_kernel() {
  local frag=$here/guest-kernel.config src=/usr/src/linux-source-6.1.tar.xz key out tmp opt
  key=$( (cat "$frag"; dpkg-query -W -f='${Version}' linux-source-6.1) | sha256sum | cut -c1-16)
  out=$cache/guest-kernel-$key
  if [ ! -f "$out/bzImage" ]; then
    local start=$SECONDS
    echo "xenlab: building the test guest's kernel from $src (first time on this machine: about 6 minutes on 2 cores)" >&2
    rm -rf "$cache"/guest-kernel-* && tmp=$out.partial && mkdir -p "$tmp"
    tar -C "$tmp" -xf "$src"
    (
      cd "$tmp"/linux-source-6.1
      make -s tinyconfig >&2
      ./scripts/kconfig/merge_config.sh -m .config "$frag" >/dev/null
      make -s olddefconfig >&2
      # Every option asked for must have survived the dependency resolution.
      grep -E '^CONFIG_[A-Z0-9_]+=' "$frag" | while read -r opt; do
        grep -qx "$opt" .config || { echo "xenlab: guest kernel: $opt did not take (a dependency is missing)" >&2; exit 1; }
      done
      make -s -j"$(nproc)" bzImage >&2
    )
    cp "$tmp"/linux-source-6.1/arch/x86/boot/bzImage "$tmp/" && rm -rf "$tmp"/linux-source-6.1
    mv "$tmp" "$out"
    echo "xenlab: guest kernel built in $((SECONDS - start)) s" >&2
  fi
  guest_kernel_path=$out/bzImage
}

# The dom0 root filesystem (debootstrap, minbase), rebuilt when the package list changes, with the
# outer machine's kernel modules and the test guest's kernel and initrd in /guest.
base_rootfs() {
  local rootfs=$cache/rootfs
  if [ "$(cat "$cache/rootfs.packages" 2>/dev/null)" != "$dom0_packages" ] || [ ! -x "$rootfs/usr/sbin/xl" ]; then
    rm -rf "$rootfs"
    echo "xenlab: debootstrap (about 1.5 minutes)" >&2
    debootstrap --variant=minbase --include="$dom0_packages" bookworm "$rootfs" >&2
    echo "$dom0_packages" > "$cache/rootfs.packages"
  fi
  rm -rf "$rootfs/lib/modules" && mkdir -p "$rootfs/lib/modules" "$rootfs/guest"
  cp -a "/lib/modules/$kver" "$rootfs/lib/modules/"
  guest_kernel
  cp "$guest_kernel_path" "$rootfs/guest/vmlinuz"
  # The test guest: a busybox initrd whose init prints a counter on its console once a second,
  # so a restart (the counter starts over) is told apart from a migration (it goes on).
  local g
  g=$(mktemp -d)
  mkdir -p "$g/bin" "$g/proc" "$g/sys" "$g/dev"
  cp /bin/busybox "$g/bin/"
  cat > "$g/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
i=0
while true; do
  echo "kubexen-guest alive $i"
  i=$((i+1))
  # What udev does in a full guest: bring vCPUs that `xl vcpu-set` made available online.
  for f in /sys/devices/system/cpu/cpu*/online; do
    [ -f "$f" ] && read -r v < "$f" && [ "$v" = 0 ] && echo 1 > "$f"
  done
  /bin/busybox sleep 1
done
EOF
  chmod +x "$g/init"
  (cd "$g" && find . | cpio -o -H newc 2>/dev/null | gzip) > "$rootfs/guest/initrd"
  rm -rf "$g"
  zcat /boot/xen-4.17-amd64.gz > "$cache/xen.elf"
}
