#!/usr/bin/env bash
# How practical is the nested arm64 path (an arm64 L1 under QEMU TCG running KVM guests,
# as cloud-hypervisor would)? Boots the arm64 guest kernel of fetch-tools.sh's "arm64"
# tool under `qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu max -smp 2
# -m 2G` (TCG, UEFI) with a busybox /init that reports the seconds to userspace, whether
# KVM initialised and /dev/kvm exists, and, when aarch64-linux-gnu-gcc is at hand, runs
# scripts/guest/arm64-kvm-probe.c (a one-vCPU KVM guest: first exit, MMIO exit cost,
# guest loop speed), and, when fetch-tools.sh's "arm64-nested" tool is cached (trixie's
# arm64 QEMU with its libraries), boots the same kernel as an L2 under that QEMU with KVM
# (-M virt,gic-version=3 -cpu host) to a busybox /init. A by-hand measurement for
# docs/testing.md ("aarch64 guest"), not a test. Prints the console ("@@" lines are the
# measurements) and the wall time.
#
# Usage: scripts/guest/arm64-nested-probe.sh [WORKDIR]
# CXL_ARM64_L1_KERNEL=<Image> boots another arm64 kernel as the L1 (the L2 stays the cached
# 6.12), e.g. trixie-backports' linux-binary-7.3.*-arm64 for KVM capabilities 6.12 lacks.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
T=${CXL_GUEST_TOOLS:-$repo/target/guest-tools}
A=$T/arm64
work=${1:-$(mktemp -d)}
mkdir -p "$work"
qemu=$(command -v qemu-system-aarch64 || true)
l1_kernel=${CXL_ARM64_L1_KERNEL:-$A/kernel/vmlinuz}
for need in "$l1_kernel" "$A/kernel/vmlinuz" "$A/busybox" "$A/QEMU_EFI.fd" "$qemu"; do
  if [ -z "$need" ] || [ ! -e "$need" ]; then
    echo "SKIP: arm64-nested-probe: missing ${need:-qemu-system-aarch64} (run scripts/guest/fetch-tools.sh arm64)"
    exit 2
  fi
done

root=$work/initramfs
rm -rf "$root"
mkdir -p "$root"/{bin,proc,sys,dev}
cp "$A/busybox" "$root/bin/busybox"
if command -v aarch64-linux-gnu-gcc >/dev/null; then
  aarch64-linux-gnu-gcc -static -O2 -Wall -o "$root/bin/kvm-probe" "$repo/scripts/guest/arm64-kvm-probe.c"
else
  echo "arm64-nested-probe: no aarch64-linux-gnu-gcc (scripts/aarch64/setup.sh installs it): no KVM guest run" >&2
fi
if [ -x "$A/l1-qemu/usr/bin/qemu-system-aarch64" ]; then
  cp -a "$A/l1-qemu/." "$root/"
  cp "$A/kernel/vmlinuz" "$root/Image"
  l2=$work/l2
  rm -rf "$l2"
  mkdir -p "$l2"/{bin,proc}
  cp "$A/busybox" "$l2/bin/busybox"
  cat >"$l2/init" <<'L2INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
echo "@@ L2 USERSPACE uptime=$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
L2INIT
  chmod +x "$l2/init"
  (cd "$l2" && find . | cpio -o -H newc --quiet | gzip -1 >"$root/l2.cpio.gz")
else
  echo "arm64-nested-probe: no $A/l1-qemu (scripts/guest/fetch-tools.sh arm64-nested): no L2 boot" >&2
fi
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "@@ USERSPACE uptime=$(cut -d' ' -f1 /proc/uptime) kernel=$(uname -r)"
echo "@@ CPUS $(grep -c ^processor /proc/cpuinfo)"
dmesg | grep -i -E 'kvm|el2|vhe|hyp' | sed 's/^/@@ DMESG /'
if [ -c /dev/kvm ]; then echo "@@ DEVKVM present"; else echo "@@ DEVKVM absent"; fi
if [ -x /bin/kvm-probe ]; then
  start=$(cut -d' ' -f1 /proc/uptime)
  /bin/kvm-probe
  echo "@@ KVM rc=$? wall_s=$(awk -v s="$start" '{print $1 - s}' /proc/uptime)"
fi
if [ -x /usr/bin/qemu-system-aarch64 ] && [ -c /dev/kvm ]; then
  start=$(cut -d' ' -f1 /proc/uptime)
  /usr/bin/qemu-system-aarch64 -enable-kvm -M virt,gic-version=3 -cpu host -smp 1 -m 512M \
    -nographic -no-reboot -nic none -kernel /Image -initrd /l2.cpio.gz \
    -append "console=ttyAMA0 panic=-1 quiet loglevel=4" </dev/null
  echo "@@ L2 QEMU rc=$? wall_s=$(awk -v s="$start" '{print $1 - s}' /proc/uptime)"
fi
echo "@@ DONE uptime=$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
INIT
chmod +x "$root/init"
# Uncompressed: with the L1 QEMU it is ~160 MB, which gzip would take longer to pack
# than the L1 kernel takes to unpack.
(cd "$root" && find . | cpio -o -H newc --quiet >"$work/initramfs.cpio")

started=$(date +%s%N)
timeout 900 "$qemu" -M virt,virtualization=on,gic-version=3 -cpu max -smp 2 -m 2G \
  -nographic -no-reboot -nic none -bios "$A/QEMU_EFI.fd" \
  -kernel "$l1_kernel" -initrd "$work/initramfs.cpio" \
  -append "console=ttyAMA0 panic=-1 quiet loglevel=4" </dev/null | tee "$work/console.log"
echo "@@ HOST wall_s=$(awk -v a="$started" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')"
