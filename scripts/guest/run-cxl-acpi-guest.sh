#!/usr/bin/env bash
# Boots Debian's 6.12 kernel under QEMU TCG with our CEDT and SSDT, loads cxl_acpi, and
# prints the guest console: dmesg, /sys/bus/cxl devices, decoder0.0 attributes and the CXL
# lines of /proc/iomem, each line prefixed with "@@".
#
#   x86_64 (default): q35, the tables injected through -acpitable.
#   arm64: virt -cpu max with the UEFI firmware (ACPI on arm64 needs it; acpi=force so the
#     kernel does not fall back to the device tree). QEMU's arm machines refuse -acpitable
#     ("Option not supported for this target"), so the tables go in through the kernel's
#     initrd table upgrade (CONFIG_ACPI_TABLE_UPGRADE, set in Debian's arm64 config): an
#     uncompressed cpio holding kernel/firmware/acpi/{cedt,ssdt}.aml placed before the
#     initramfs (the kernel then prints "Table Upgrade: install [CEDT-...]" and taints
#     itself with TAINT_OVERRIDDEN_ACPI_TABLE).
#
# Usage: scripts/guest/run-cxl-acpi-guest.sh [--arch x86_64|arm64] CEDT_FILE SSDT_FILE [WORKDIR]
# Tools come from scripts/guest/fetch-tools.sh (tools "qemu kernel busybox" for x86_64,
# "arm64" for arm64; run it first, this script fetches nothing). Exits 2 with a "SKIP:"
# line when a tool is missing.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
T=${CXL_GUEST_TOOLS:-$repo/target/guest-tools}
arch=x86_64
if [ "${1:-}" = --arch ]; then
  arch=$2
  shift 2
fi
cedt=$(realpath "$1")
ssdt=$(realpath "$2")
work=${3:-$(mktemp -d)}
mkdir -p "$work"

case "$arch" in
  x86_64)
    K=$T/kernel busybox=$T/busybox firmware=
    qemu=$(command -v qemu-system-x86_64 || true)
    fetch="qemu kernel busybox"
    ;;
  arm64)
    K=$T/arm64/kernel busybox=$T/arm64/busybox firmware=$T/arm64/QEMU_EFI.fd
    qemu=$(command -v qemu-system-aarch64 || true)
    fetch=arm64
    ;;
  *)
    echo "run-cxl-acpi-guest: unknown --arch $arch (x86_64 or arm64)" >&2
    exit 1
    ;;
esac
for need in "$K/vmlinuz" "$busybox" ${firmware:+"$firmware"} "$qemu"; do
  if [ -z "$need" ] || [ ! -e "$need" ]; then
    echo "SKIP: run-cxl-acpi-guest: missing ${need:-qemu for $arch} (run scripts/guest/fetch-tools.sh $fetch)"
    exit 2
  fi
done
cxl_acpi=$(find "$K/modules" -name 'cxl_acpi.ko*' | head -n1)
[ -n "$cxl_acpi" ] || { echo "SKIP: run-cxl-acpi-guest: no cxl_acpi module in $K"; exit 2; }
# The archiver runs on this machine: the host's cpio, else the x86-64 busybox's.
if command -v cpio >/dev/null; then
  newc() { cpio -o -H newc --quiet; }
elif [ -x "$T/busybox" ]; then
  newc() { "$T/busybox" cpio -o -H newc 2>/dev/null; }
else
  echo "SKIP: run-cxl-acpi-guest: no cpio (install cpio, or run scripts/guest/fetch-tools.sh busybox)"
  exit 2
fi

root=$work/initramfs
rm -rf "$root"
mkdir -p "$root"/{bin,proc,sys,dev}
cp "$busybox" "$root/bin/busybox"
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
echo "@@ INIT uptime=$(cut -d' ' -f1 /proc/uptime)"
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
echo "@@ DONE uptime=$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | newc | gzip -1 >"$work/initramfs.cpio.gz")

case "$arch" in
  x86_64)
    exec timeout 120 "$qemu" -M q35 -m 512M -smp 1 -nographic -no-reboot -nic none \
      -kernel "$K/vmlinuz" -initrd "$work/initramfs.cpio.gz" \
      -append "console=ttyS0 panic=-1 quiet loglevel=4" \
      -acpitable file="$cedt" -acpitable file="$ssdt" </dev/null
    ;;
  arm64)
    tables=$work/acpi-tables
    rm -rf "$tables"
    mkdir -p "$tables/kernel/firmware/acpi"
    cp "$cedt" "$tables/kernel/firmware/acpi/cedt.aml"
    cp "$ssdt" "$tables/kernel/firmware/acpi/ssdt.aml"
    (cd "$tables" && find kernel | newc) >"$work/acpi-tables.cpio"
    cat "$work/acpi-tables.cpio" "$work/initramfs.cpio.gz" >"$work/initrd-arm64"
    # QEMU's PCI0 spans buses 0x00-0xff of the one ECAM (MCFG segment 0), and arm64 Linux
    # claims each host bridge's ECAM slice exclusively, so our host bridge's bus 0x80 could
    # not be mapped ("can't claim ECAM area"). An empty pxb-pcie at bus 0x7f cuts PCI0 to
    # 0x00-0x7e (QEMU ends PCI0 below the lowest expander bus) and claims only 0x7f; bus
    # 0x80's ECAM slice is then free and reads all-ones (no device).
    exec timeout 300 "$qemu" -M virt -cpu max -m 512M -smp 1 -nographic -no-reboot -nic none \
      -device pxb-pcie,bus_nr=0x7f,bus=pcie.0,id=pxb0 \
      -bios "$firmware" -kernel "$K/vmlinuz" -initrd "$work/initrd-arm64" \
      -append "console=ttyAMA0 acpi=force panic=-1 quiet loglevel=4" </dev/null
    ;;
esac
