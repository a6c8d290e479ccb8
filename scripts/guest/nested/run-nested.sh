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
runs=6.12:1,6.12:2,7.3:1,7.3:2
work=""
l2only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --l2-only) l2only=$2; shift 2 ;;
    *) echo "usage: $0 [--runs KERNEL:DEVICES[:REVISION],...] [--work DIR] [--l2-only DIR]" >&2; exit 64 ;;
  esac
done
skip() { echo "SKIP: run-nested: $*"; exit 2; }

ch=${CXL_E2E_CLOUD_HYPERVISOR:-}
[ -n "$ch" ] || [ -n "$l2only" ] || skip "set CXL_E2E_CLOUD_HYPERVISOR=/path/to/cloud-hypervisor (built with --features cxl-sim)"
[ -n "$l2only" ] || [ -x "$ch" ] || skip "CXL_E2E_CLOUD_HYPERVISOR=$ch is not an executable"
kdir() { case $1 in 6.12) echo "$T/kernel" ;; 7.3) echo "$T/kernel-7.3" ;; *) return 1 ;; esac; }
kernels=""
for r in ${runs//,/ }; do
  k=${r%%:*} rest=${r#*:}
  n=${rest%%:*} rev=v3
  [ "$rest" = "$n" ] || rev=${rest#*:}
  kdir "$k" >/dev/null && { [ "$n" = 1 ] || [ "$n" = 2 ]; } && case $rev in v2 | v3 | v4) true ;; *) false ;; esac ||
    { echo "bad case $r (KERNEL 6.12|7.3 : DEVICES 1|2 [: REVISION v2|v3|v4])" >&2; exit 64; }
  case " $kernels " in *" $k "*) ;; *) kernels="$kernels $k" ;; esac
done
qemu=$(command -v qemu-system-x86_64 || true)
[ -z "$l2only" ] || qemu=$T/busybox # (no QEMU needed for the payload alone)
for need in "$T/kernel/vmlinuz" "$T/busybox" "$qemu" $(for k in $kernels; do echo "$(kdir "$k")/vmlinuz"; done); do
  [ -n "$need" ] && [ -e "$need" ] || skip "missing ${need:-qemu-system-x86_64} (run scripts/guest/fetch-tools.sh qemu kernel kernel73 busybox)"
done
for tool in zstd xz gzip ldd; do command -v $tool >/dev/null || skip "host tool $tool missing"; done
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

cpio_gz() { (cd "$1" && find . | "$T/busybox" cpio -o -H newc 2>/dev/null | gzip -1 >"$2"); }

# --- L2: per kernel, vmlinux + an initramfs with its CXL modules and l2-init.sh
nonce=$((($(od -An -N4 -tu4 /dev/urandom) & 0x7fffffff) | 1))
l2() { # KERNEL DEST: vmlinux and initramfs.cpio.gz for that kernel into DEST
  local k=$1 dest=$2 kd l2root
  kd=$(kdir "$k")
  l2root=$work/l2root-$k
  rm -rf "$l2root" && mkdir -p "$l2root"/{bin,proc,sys,dev,tmp} "$dest"
  cp "$T/busybox" "$l2root/bin/busybox"
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
  vmlinux "$kd/vmlinuz" "$T/vmlinux-$k" || skip "cannot extract vmlinux from $kd/vmlinuz"
  cp "$T/vmlinux-$k" "$dest/vmlinux"
  cpio_gz "$l2root" "$dest/initramfs.cpio.gz"
}

if [ -n "$l2only" ]; then
  for k in $kernels; do l2 "$k" "$l2only/$k"; done
  echo "$nonce" >"$l2only/nonce"
  exit 0
fi

# --- L1: 6.12 kernel, KVM modules, cloud-hypervisor + its libraries, the L2 payload
l1root=$work/l1root
rm -rf "$l1root" && mkdir -p "$l1root"/{bin,proc,sys,dev,tmp,ch,l2}
cp "$T/busybox" "$l1root/bin/busybox"
: >"$l1root/modules.list"
for m in irqbypass ccp kvm kvm-amd; do modko "$T/kernel" $m "$l1root"; done
cp "$ch" "$l1root/ch/cloud-hypervisor"
ldd "$ch" | grep -oE '/[^ ]+' | while read -r lib; do
  mkdir -p "$l1root$(dirname "$lib")"
  cp -L "$lib" "$l1root$lib"
done
for k in $kernels; do l2 "$k" "$l1root/l2/$k"; done
printf 'RUNS="%s"\nCH_TIMEOUT=%s\n' "${runs//,/ }" "${CXL_E2E_CH_TIMEOUT:-300}" >"$l1root/nested.conf"
cp "$here/l1-init.sh" "$l1root/init"
chmod +x "$l1root/init"
cpio_gz "$l1root" "$work/l1.cpio.gz"

echo "@@run.cases=$runs"
echo "@@run.nonce=$nonce"
echo "@@run.ch=$ch"
exec timeout "${CXL_E2E_QEMU_TIMEOUT:-900}" "$qemu" -M q35 -cpu EPYC -m 3G -smp 2 -nographic -no-reboot -nic none \
  -kernel "$T/kernel/vmlinuz" -initrd "$work/l1.cpio.gz" \
  -append "console=ttyS0 panic=-1 quiet loglevel=3" </dev/null
