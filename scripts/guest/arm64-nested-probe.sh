#!/usr/bin/env bash
# How practical is the nested arm64 path (an arm64 L1 under QEMU TCG running KVM guests,
# as cloud-hypervisor would)? Boots the arm64 guest kernel of fetch-tools.sh's "arm64"
# tool under `qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu max -smp 2
# -m 2G` (TCG, UEFI) with a busybox /init that reports the seconds to userspace, whether
# KVM initialised and /dev/kvm exists, and, when aarch64-linux-gnu-gcc is at hand, runs
# scripts/guest/arm64-kvm-probe.c (a one-vCPU KVM guest: first exit, MMIO exit cost,
# guest loop speed). A by-hand measurement for docs/testing.md ("aarch64 guest"), not a
# test. Prints the console ("@@" lines are the measurements) and the wall time.
#
# Usage: scripts/guest/arm64-nested-probe.sh [WORKDIR]
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
T=${CXL_GUEST_TOOLS:-$repo/target/guest-tools}
A=$T/arm64
work=${1:-$(mktemp -d)}
mkdir -p "$work"
qemu=$(command -v qemu-system-aarch64 || true)
for need in "$A/kernel/vmlinuz" "$A/busybox" "$A/QEMU_EFI.fd" "$qemu"; do
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
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "@@ USERSPACE uptime=$(cut -d' ' -f1 /proc/uptime)"
echo "@@ CPUS $(grep -c ^processor /proc/cpuinfo)"
dmesg | grep -i -E 'kvm|el2|vhe|hyp' | sed 's/^/@@ DMESG /'
if [ -c /dev/kvm ]; then echo "@@ DEVKVM present"; else echo "@@ DEVKVM absent"; fi
if [ -x /bin/kvm-probe ]; then
  start=$(cut -d' ' -f1 /proc/uptime)
  /bin/kvm-probe
  echo "@@ KVM rc=$? wall_s=$(awk -v s="$start" '{print $1 - s}' /proc/uptime)"
fi
echo "@@ DONE uptime=$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1 >"$work/initramfs.cpio.gz")

started=$(date +%s%N)
timeout 900 "$qemu" -M virt,virtualization=on,gic-version=3 -cpu max -smp 2 -m 2G \
  -nographic -no-reboot -nic none -bios "$A/QEMU_EFI.fd" \
  -kernel "$A/kernel/vmlinuz" -initrd "$work/initramfs.cpio.gz" \
  -append "console=ttyAMA0 panic=-1 quiet loglevel=4" </dev/null | tee "$work/console.log"
echo "@@ HOST wall_s=$(awk -v a="$started" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')"
