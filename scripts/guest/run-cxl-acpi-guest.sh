#!/usr/bin/env bash
# Boots Debian's 6.12 kernel under QEMU TCG (q35) with our CEDT and SSDT injected through
# -acpitable, loads cxl_acpi, and prints the guest console: dmesg, /sys/bus/cxl devices,
# decoder0.0 attributes and the CXL lines of /proc/iomem, each line prefixed with "@@".
#
# Usage: scripts/guest/run-cxl-acpi-guest.sh CEDT_FILE SSDT_FILE [WORKDIR]
# Tools come from scripts/guest/fetch-tools.sh (run it first; this script fetches
# nothing). Exits 2 with a "SKIP:" line when a tool is missing.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
T=${CXL_GUEST_TOOLS:-$repo/target/guest-tools}
cedt=$(realpath "$1")
ssdt=$(realpath "$2")
work=${3:-$(mktemp -d)}
mkdir -p "$work"

qemu=$(command -v qemu-system-x86_64 || true)
for need in "$T/kernel/vmlinuz" "$T/busybox" "$qemu"; do
  if [ -z "$need" ] || [ ! -e "$need" ]; then
    echo "SKIP: run-cxl-acpi-guest: missing ${need:-qemu-system-x86_64} (run scripts/guest/fetch-tools.sh)"
    exit 2
  fi
done
cxl_acpi=$(find "$T/kernel/modules" -name 'cxl_acpi.ko*' | head -n1)
[ -n "$cxl_acpi" ] || { echo "SKIP: run-cxl-acpi-guest: no cxl_acpi module in $T/kernel"; exit 2; }

root=$work/initramfs
rm -rf "$root"
mkdir -p "$root"/{bin,proc,sys,dev}
cp "$T/busybox" "$root/bin/busybox"
case "$cxl_acpi" in
  *.xz) xz -dc "$cxl_acpi" >"$root/cxl_acpi.ko" ;;
  *.zst) zstd -qdc "$cxl_acpi" >"$root/cxl_acpi.ko" ;;
  *) cp "$cxl_acpi" "$root/cxl_acpi.ko" ;;
esac
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "@@ INIT"
insmod /cxl_acpi.ko && echo "@@ INSMOD ok" || echo "@@ INSMOD failed"
dmesg | sed 's/^/@@ DMESG /'
for d in /sys/bus/cxl/devices/*; do
  [ -e "$d" ] && echo "@@ DEV $(basename "$d") driver=$(basename "$(readlink "$d/driver" 2>/dev/null || echo none)")"
done
dec=/sys/bus/cxl/devices/decoder0.0
for f in start size cap_type2 cap_type3 cap_ram cap_pmem locked interleave_ways interleave_granularity target_list qos_class; do
  [ -e "$dec/$f" ] && echo "@@ DECODER0.0 $f=$(cat "$dec/$f")"
done
grep -i cxl /proc/iomem | sed 's/^ */@@ IOMEM /'
echo "@@ DONE"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | "$T/busybox" cpio -o -H newc 2>/dev/null | gzip -1 >"$work/initramfs.cpio.gz")

exec timeout 120 "$qemu" -M q35 -m 512M -smp 1 -nographic -no-reboot -nic none \
  -kernel "$T/kernel/vmlinuz" -initrd "$work/initramfs.cpio.gz" \
  -append "console=ttyS0 panic=-1 quiet loglevel=4" \
  -acpitable file="$cedt" -acpitable file="$ssdt" </dev/null
