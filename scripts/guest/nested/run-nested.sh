#!/usr/bin/env bash
# Nested end-to-end run: QEMU TCG (nested SVM) boots an L1 Debian 6.12 guest that runs the
# patched cloud-hypervisor given in CXL_E2E_CLOUD_HYPERVISOR once per case, each time
# booting an L2 Linux guest with simulated CXL Type-2 devices
# (`--device path=sim:vN,cxl=on,pci_segment=S`). The L2 /init (l2-init.sh) prints what the
# guest's CXL stack shows as "@@key=value" lines; the L1 /init (l1-init.sh) brackets each
# case with @@run.begin/@@run.end and adds cloud-hypervisor's CXL log lines. One L1 boot
# serves every case (it is the slow part). Prints the whole console.
#
# Usage: CXL_E2E_CLOUD_HYPERVISOR=/path/to/cloud-hypervisor \
#        scripts/guest/nested/run-nested.sh [--runs 6.12:1,6.12:2,7.3:1,7.3:2] [--work DIR]
#        CXL_E2E_CLOUD_HYPERVISOR_AARCH64=/path/to/aarch64/cloud-hypervisor \
#        scripts/guest/nested/run-nested.sh --arch arm64 [--runs 6.12:1] [--work DIR]
# --arch arm64: L1 is trixie's arm64 6.12 under qemu-system-aarch64 -M virt,virtualization=on
# -cpu max (TCG, UEFI; KVM in L1 is built in), the aarch64 cloud-hypervisor comes with its
# aarch64 glibc libraries (from /usr/aarch64-linux-gnu, the cross libc), and the L2 is the
# same arm64 6.12 kernel (raw Image) on ttyAMA0, booted by cloud-hypervisor with its FDT
# (CXL_E2E_ARM64_ACPI=off, the default). CXL_E2E_ARM64_ACPI=force adds `acpi=force
# acpi_rsdp=0x40200000` (cloud-hypervisor's RSDP) to try its ACPI tables (CEDT, ACPI0016,
# IORT, MCFG) instead: Linux finds them but, without UEFI's memory map, arm64's
# acpi_os_ioremap refuses them after early boot (docs/testing.md, "aarch64 guest").
# CXL_E2E_ARM64_FIRMWARE=/path/to/CLOUDHV_EFI.fd (cloud-hypervisor's edk2 build of
# ArmVirtPkg/ArmVirtCloudHv.dsc, built by hand: docs/testing.md) boots the L2 through that
# UEFI firmware instead, which hands cloud-hypervisor's ACPI tables to Linux: the L2 gets
# a FAT ESP (mtools) on a virtio disk with Image, initrd, the same build's UEFI Shell as
# \EFI\BOOT\BOOTAA64.EFI (Shell.efi next to the firmware or in ../AARCH64/ of its FV
# directory: the firmware's own boot manager registers its built-in Shell inactive, so
# nothing would run it) and a startup.nsh that starts `Image initrd=\initrd <the L2
# command line>`.
# CXL_E2E_L2_APPEND adds words to the L2 kernel command line (e.g. loglevel=8 to debug).
# Tools: fetch-tools.sh arm64. Only 6.12 L2 cases (there is no arm64 7.3 kernel here).
# A case is L2-KERNEL:DEVICES[:REVISION] (kernel 6.12 or 7.3; 1 or 2 devices; the UAPI
# revision of the first device's simulator, v2, v3 or v4, default v3; the second device
# is v2); default: the four cases with the default revision.
# The binary must be built with the test-only `cxl-sim` feature. Tools come from
# scripts/guest/fetch-tools.sh (qemu kernel kernel73 busybox); run it first (as root).
# The 7.3 cases load our Type-2 test driver when scripts/guest/build-guest-driver.sh has
# built it (else they report "@@l2.t2driver=absent").
# With --l2-only DIR it only builds the L2 payload (DIR/KERNEL/{vmlinux,initramfs.cpio.gz},
# NONCE in DIR/nonce) and exits: the real-kernel lab (scripts/guest/lab/) runs the same L2.
# Exits 2 with one "SKIP:" line when something needed is missing. Limits for a hang, not
# a time budget: QEMU is killed after CXL_E2E_QEMU_TIMEOUT s (default 900; exit 124),
# one cloud-hypervisor run after CXL_E2E_CH_TIMEOUT s (default 300).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
T=${CXL_GUEST_TOOLS:-$repo/target/guest-tools}
runs=""
work=""
arch=x86_64
l2only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --l2-only) l2only=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    *) echo "usage: $0 [--arch x86_64|arm64] [--runs KERNEL:DEVICES[:REVISION],...] [--work DIR] [--l2-only DIR]" >&2; exit 64 ;;
  esac
done
skip() { echo "SKIP: run-nested: $*"; exit 2; }

# Per architecture: the variable naming cloud-hypervisor, the guest tools, the L1 KVM
# modules, the QEMU, the L2 kernel file and console.
case $arch in
  x86_64)
    chvar=CXL_E2E_CLOUD_HYPERVISOR A=$T fetch="qemu kernel kernel73 busybox"
    l1mods="irqbypass ccp kvm kvm-amd" qemu_name=qemu-system-x86_64
    l2kernel=vmlinux l2console=ttyS0 l2extra="" l2fw=""
    ;;
  arm64)
    chvar=CXL_E2E_CLOUD_HYPERVISOR_AARCH64 A=$T/arm64 fetch=arm64
    l1mods="" qemu_name=qemu-system-aarch64 # (KVM is built into Debian's arm64 kernel)
    l2kernel=Image l2console=ttyAMA0
    case ${CXL_E2E_ARM64_ACPI:-off} in
      force) l2extra=" acpi=force acpi_rsdp=0x40200000" ;; # ACPI_START in cloud-hypervisor's aarch64 layout
      off) l2extra="" ;;
      *) echo "CXL_E2E_ARM64_ACPI must be force or off" >&2; exit 64 ;;
    esac
    l2fw=${CXL_E2E_ARM64_FIRMWARE:-}
    if [ -n "$l2fw" ]; then
      [ -z "$l2extra" ] || { echo "CXL_E2E_ARM64_FIRMWARE and CXL_E2E_ARM64_ACPI=force exclude each other" >&2; exit 64; }
      [ -s "$l2fw" ] || skip "CXL_E2E_ARM64_FIRMWARE=$l2fw is not a file (CLOUDHV_EFI.fd, docs/testing.md)"
      l2shell=$(dirname "$l2fw")/Shell.efi
      [ -s "$l2shell" ] || l2shell=$(dirname "$l2fw")/../AARCH64/Shell.efi
      [ -s "$l2shell" ] || skip "no Shell.efi next to CXL_E2E_ARM64_FIRMWARE=$l2fw (nor in ../AARCH64/): the same edk2 build's UEFI Shell"
      for tool in mformat mmd mcopy; do command -v $tool >/dev/null || skip "host tool $tool missing (mtools; needed by CXL_E2E_ARM64_FIRMWARE)"; done
    fi
    ;;
  *) echo "--arch must be x86_64 or arm64" >&2; exit 64 ;;
esac
[ -n "$runs" ] || case $arch in x86_64) runs=6.12:1,6.12:2,7.3:1,7.3:2 ;; arm64) runs=6.12:1,6.12:2 ;; esac
ch=${!chvar:-}
[ -n "$ch" ] || [ -n "$l2only" ] || skip "set $chvar=/path/to/cloud-hypervisor (built for $arch with --features cxl-sim)"
[ -n "$l2only" ] || [ -x "$ch" ] || skip "$chvar=$ch is not an executable"
if [ -z "$l2only" ] && [ "$arch" = arm64 ] && ! readelf -h "$ch" 2>/dev/null | grep -q AArch64; then
  echo "$chvar=$ch is not an aarch64 binary" >&2; exit 64
fi
kdir() {
  case $arch:$1 in
    *:6.12) echo "$A/kernel" ;;
    x86_64:7.3) echo "$T/kernel-7.3" ;;
    *) return 1 ;;
  esac
}
kernels=""
for r in ${runs//,/ }; do
  k=${r%%:*} rest=${r#*:}
  n=${rest%%:*} rev=v3
  [ "$rest" = "$n" ] || rev=${rest#*:}
  kdir "$k" >/dev/null && { [ "$n" = 1 ] || [ "$n" = 2 ]; } && case $rev in v2 | v3 | v4) true ;; *) false ;; esac ||
    { echo "bad case $r (KERNEL 6.12|7.3 (x86_64 only) : DEVICES 1|2 [: REVISION v2|v3|v4])" >&2; exit 64; }
  case " $kernels " in *" $k "*) ;; *) kernels="$kernels $k" ;; esac
done
qemu=$(command -v $qemu_name || true)
[ -z "$l2only" ] || qemu=$A/busybox # (no QEMU needed for the payload alone)
fw=""
[ "$arch" = x86_64 ] || fw=$A/QEMU_EFI.fd
for need in "$A/kernel/vmlinuz" "$A/busybox" "$qemu" $fw $(for k in $kernels; do echo "$(kdir "$k")/vmlinuz"; done); do
  [ -n "$need" ] && [ -e "$need" ] || skip "missing ${need:-$qemu_name} (run scripts/guest/fetch-tools.sh $fetch)"
done
for tool in zstd xz gzip ldd readelf; do command -v $tool >/dev/null || skip "host tool $tool missing"; done
[ -n "$work" ] || work=$(mktemp -d)
mkdir -p "$work"

# modko KERNELDIR NAME DEST: NAME.ko and (first) the modules it depends on, decompressed
# into DEST/modules; appends the load order to DEST/modules.list. Builtins are skipped.
modko() {
  local kdir=$1 name=$2 dest=$3 f deps d
  grep -qx "$name" "$dest/modules.list" 2>/dev/null && return 0
  f=$(find "$kdir/modules" -name "$name.ko*" | head -n1)
  [ -n "$f" ] || f=$(find "$kdir/modules" -name "${name//_/-}.ko*" | head -n1)
  [ -n "$f" ] || return 0 # built in
  mkdir -p "$dest/modules"
  case "$f" in
    *.xz) xz -dc "$f" >"$dest/modules/$name.ko" ;;
    *.zst) zstd -qdc "$f" >"$dest/modules/$name.ko" ;;
    *) cp "$f" "$dest/modules/$name.ko" ;;
  esac
  deps=$(tr '\0' '\n' <"$dest/modules/$name.ko" | sed -n 's/^depends=//p' | head -n1)
  for d in ${deps//,/ }; do modko "$kdir" "$d" "$dest"; done
  echo "$name" >>"$dest/modules.list"
}

# vmlinux for cloud-hypervisor's PVH boot: the zstd payload of the bzImage (cached).
vmlinux() {
  local bz=$1 out=$2
  [ -s "$out" ] && [ "$out" -nt "$bz" ] && return 0
  local off
  off=$(LC_ALL=C grep -obUaP '\x28\xb5\x2f\xfd' "$bz" | cut -d: -f1)
  for o in $off; do
    # zstd complains about the bytes after the frame; the output is complete anyway.
    tail -c +"$((o + 1))" "$bz" | zstd -qdc 2>/dev/null >"$out.tmp" || true
    if [ "$(head -c4 "$out.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then mv "$out.tmp" "$out"; return 0; fi
  done
  rm -f "$out.tmp"
  return 1
}

# Image for cloud-hypervisor's aarch64 boot: the arm64 vmlinuz as it is when it is a raw
# Image ("ARMd" at 0x38), else gunzipped (cached).
arm64_image() {
  local vz=$1 out=$2
  [ -s "$out" ] && [ "$out" -nt "$vz" ] && return 0
  if [ "$(tail -c +57 "$vz" | head -c4)" = ARMd ]; then cp "$vz" "$out.tmp"; else gzip -dc "$vz" >"$out.tmp" || return 1; fi
  [ "$(tail -c +57 "$out.tmp" | head -c4)" = ARMd ] || { rm -f "$out.tmp"; return 1; }
  mv "$out.tmp" "$out"
}

# libs BINARY ROOT: the shared libraries BINARY needs (recursively) and its loader into
# ROOT at the paths it asks for. x86_64: as the host's ldd resolves them. aarch64: from
# the cross libc (/usr/aarch64-linux-gnu/lib) or the arm64 packages of fetch-tools.sh
# (arm64/l1-qemu), into ROOT/lib (l1-init.sh sets LD_LIBRARY_PATH=/lib).
libs() {
  local bin=$1 root=$2 lib interp todo name d found
  if [ "$arch" = x86_64 ]; then
    ldd "$bin" | grep -oE '/[^ ]+' | while read -r lib; do
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
    return 0
  fi
  interp=$(readelf -l "$bin" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
  mkdir -p "$root/lib"
  todo=$bin
  while [ -n "$todo" ]; do
    # shellcheck disable=SC2086 # one word per file
    set -- $todo
    todo=""
    for lib in "$@"; do
      for name in $(readelf -d "$lib" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
        [ -e "$root/lib/$name" ] && continue
        found=""
        for d in /usr/aarch64-linux-gnu/lib "$A/l1-qemu/usr/lib/aarch64-linux-gnu" "$A/l1-qemu/lib/aarch64-linux-gnu"; do
          [ -e "$d/$name" ] && { found=$d/$name; break; }
        done
        [ -n "$found" ] || skip "aarch64 library $name (needed by $lib) not found: install libc6-arm64-cross"
        cp -L "$found" "$root/lib/$name"
        todo="$todo $root/lib/$name"
      done
    done
  done
  if [ -n "$interp" ]; then
    mkdir -p "$root$(dirname "$interp")"
    [ -e "$root$interp" ] || cp -L "/usr/aarch64-linux-gnu/lib/$(basename "$interp")" "$root$interp" ||
      skip "aarch64 loader $interp not found: install libc6-arm64-cross"
  fi
}

# esp DIR: DIR/esp.img, a FAT ESP with DIR's Image and initramfs (as \Image, \initrd), the
# UEFI Shell as the removable-media boot file and a startup.nsh (next to it and at the
# root) the Shell runs: the Image (an EFI application) with the L2 command line. The
# Image then lives only in the ESP.
esp() {
  local d=$1 img=$1/esp.img
  printf 'fs0:\\Image initrd=\\initrd %s\r\n' "$l2cmdline" >"$d/startup.nsh"
  rm -f "$img"
  truncate -s $((($(stat -c %s "$d/Image") + $(stat -c %s "$d/initramfs.cpio.gz")) / 1048576 + 40))M "$img"
  mformat -i "$img" -F :: >/dev/null
  mmd -i "$img" ::/EFI ::/EFI/BOOT
  mcopy -i "$img" "$l2shell" ::/EFI/BOOT/BOOTAA64.EFI
  mcopy -i "$img" "$d/startup.nsh" ::/EFI/BOOT/startup.nsh
  mcopy -i "$img" "$d/Image" ::/Image
  mcopy -i "$img" "$d/initramfs.cpio.gz" ::/initrd
  mcopy -i "$img" "$d/startup.nsh" ::/startup.nsh
  rm "$d/Image" "$d/initramfs.cpio.gz" "$d/startup.nsh"
}

cpio_gz() { (cd "$1" && find . | "$A/busybox" cpio -o -H newc 2>/dev/null | gzip -1 >"$2"); }

# --- L2: per kernel, vmlinux + an initramfs with its CXL modules and l2-init.sh
nonce=$((($(od -An -N4 -tu4 /dev/urandom) & 0x7fffffff) | 1))
l2cmdline="console=$l2console iomem=relaxed panic=-1 quiet$l2extra${CXL_E2E_L2_APPEND:+ $CXL_E2E_L2_APPEND}"
l2() { # KERNEL DEST: vmlinux and initramfs.cpio.gz for that kernel into DEST
  local k=$1 dest=$2 kd l2root
  kd=$(kdir "$k")
  l2root=$work/l2root-$k
  rm -rf "$l2root" && mkdir -p "$l2root"/{bin,proc,sys,dev,tmp} "$dest"
  cp "$A/busybox" "$l2root/bin/busybox"
  : >"$l2root/modules.list"
  for m in cxl_acpi cxl_pci cxl_mem; do modko "$kd" $m "$l2root"; done
  # Our Type-2 test driver (7.3 only: the Type-2 accelerator API), loaded by l2-init.sh
  # after the CXL core settled; built by scripts/guest/build-guest-driver.sh.
  if [ "$k" = 7.3 ] && [ -s "$T/guest-driver/cxl_t2_test.ko" ]; then
    mkdir -p "$l2root/modules"
    cp "$T/guest-driver/cxl_t2_test.ko" "$l2root/modules/cxl_t2_test.ko"
  fi
  cp "$here/l2-init.sh" "$l2root/init"
  chmod +x "$l2root/init"
  echo "NONCE=$nonce" >"$l2root/e2e.conf"
  if [ "$arch" = x86_64 ]; then
    vmlinux "$kd/vmlinuz" "$T/vmlinux-$k" || skip "cannot extract vmlinux from $kd/vmlinuz"
    cp "$T/vmlinux-$k" "$dest/vmlinux"
  else
    arm64_image "$kd/vmlinuz" "$A/Image-$k" || skip "cannot make a raw Image of $kd/vmlinuz"
    cp "$A/Image-$k" "$dest/Image"
  fi
  cpio_gz "$l2root" "$dest/initramfs.cpio.gz"
  [ -z "$l2fw" ] || esp "$dest"
}

if [ -n "$l2only" ]; then
  for k in $kernels; do l2 "$k" "$l2only/$k"; done
  echo "$nonce" >"$l2only/nonce"
  exit 0
fi

# --- L1: 6.12 kernel, KVM modules, cloud-hypervisor + its libraries, the L2 payload
l1root=$work/l1root
rm -rf "$l1root" && mkdir -p "$l1root"/{bin,proc,sys,dev,tmp,ch,l2}
cp "$A/busybox" "$l1root/bin/busybox"
: >"$l1root/modules.list"
for m in $l1mods; do modko "$A/kernel" $m "$l1root"; done
cp "$ch" "$l1root/ch/cloud-hypervisor"
libs "$ch" "$l1root"
for k in $kernels; do l2 "$k" "$l1root/l2/$k"; done
printf 'RUNS="%s"\nCH_TIMEOUT=%s\nL2_KERNEL=%s\nL2_CMDLINE="%s"\n' "${runs//,/ }" "${CXL_E2E_CH_TIMEOUT:-300}" \
  "$l2kernel" "$l2cmdline" >"$l1root/nested.conf"
if [ -n "$l2fw" ]; then
  mkdir -p "$l1root/fw"
  cp "$l2fw" "$l1root/fw/CLOUDHV_EFI.fd"
  echo 'L2_FIRMWARE=/fw/CLOUDHV_EFI.fd' >>"$l1root/nested.conf"
fi
cp "$here/l1-init.sh" "$l1root/init"
chmod +x "$l1root/init"
cpio_gz "$l1root" "$work/l1.cpio.gz"

echo "@@run.cases=$runs"
echo "@@run.nonce=$nonce"
echo "@@run.ch=$ch"
echo "@@run.arch=$arch"
[ -z "$l2fw" ] || echo "@@run.l2_firmware=$l2fw"
echo "@@run.qemu=$("$qemu" --version | head -n1)"
if [ "$arch" = arm64 ]; then
  exec timeout "${CXL_E2E_QEMU_TIMEOUT:-900}" "$qemu" -M virt,virtualization=on,gic-version=3 -cpu max -m 2G -smp 2 \
    -nographic -no-reboot -nic none -bios "$fw" -kernel "$A/kernel/vmlinuz" -initrd "$work/l1.cpio.gz" \
    -append "console=ttyAMA0 panic=-1 quiet loglevel=3" </dev/null
fi
exec timeout "${CXL_E2E_QEMU_TIMEOUT:-900}" "$qemu" -M q35 -cpu EPYC -m 3G -smp 2 -nographic -no-reboot -nic none \
  -kernel "$A/kernel/vmlinuz" -initrd "$work/l1.cpio.gz" \
  -append "console=ttyS0 panic=-1 quiet loglevel=3" </dev/null
