#!/usr/bin/env bash
# The real-kernel lab (docs/lab.md): QEMU TCG (nested SVM) boots L1 = Linux 7.3.4 with
# the vfio-cxl v3 series, on a QEMU CXL topology whose type-3 endpoint has one HDM
# decoder (our QEMU patch, tests/lab/qemu/). L1's /init (l1-init.sh) commits the host
# bridge's and the endpoint's decoders the way firmware would, binds vfio-pci, and runs
# against the REAL driver: the v3 kernel selftest, our `probe --json`, the kernel_real
# tests, `demo --device`, and (when given) the patched cloud-hypervisor booting an L2.
# Lines for the test are "@@key=value" (tests/tests/lab_real_kernel.rs reads them).
#
# Usage: CXL_LAB_QEMU=/path/qemu-system-x86_64 CXL_LAB_KERNEL=/path/bzImage \
#        [CXL_LAB_QEMU_DATA=/usr/share/seabios:/usr/share/qemu] [CXL_LAB_SELFTEST=/path/vfio_cxl_test] \
#        [CXL_E2E_CLOUD_HYPERVISOR=/path/cloud-hypervisor] scripts/guest/lab/run-lab.sh [--work DIR]
# Builds our CLI and the kernel_real test binary (release) itself. Exits 2 with one
# "SKIP:" line when something needed is missing. Nothing here builds the kernel or QEMU
# (docs/lab.md says how to build them by hand).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
T=${CXL_GUEST_TOOLS:-$repo/target/guest-tools}
work=""
while [ $# -gt 0 ]; do
  case "$1" in
    --work) work=$2; shift 2 ;;
    *) echo "usage: $0 [--work DIR]" >&2; exit 64 ;;
  esac
done
skip() { echo "SKIP: run-lab: $*"; exit 2; }

qemu=${CXL_LAB_QEMU:-}
kernel=${CXL_LAB_KERNEL:-}
[ -n "$qemu" ] && [ -n "$kernel" ] || skip "set CXL_LAB_QEMU (patched qemu-system-x86_64) and CXL_LAB_KERNEL (7.3.4 + vfio-cxl v3 bzImage); docs/lab.md says how to build them"
[ -x "$qemu" ] || skip "CXL_LAB_QEMU=$qemu is not an executable"
[ -f "$kernel" ] || skip "CXL_LAB_KERNEL=$kernel is not a file"
[ -e "$T/busybox" ] || skip "missing $T/busybox (run scripts/guest/fetch-tools.sh busybox)"
for tool in gzip ldd cargo; do command -v $tool >/dev/null || skip "host tool $tool missing"; done
[ -n "$work" ] || work=$(mktemp -d)
mkdir -p "$work"

# Our binaries, release builds (the lab's CPU is emulated: debug builds are slow there).
(cd "$repo" && cargo build -q --release -p cxl-passthrough --bin cxl-passthrough) >&2
cli=${CARGO_TARGET_DIR:-$repo/target}/release/cxl-passthrough
kreal=$(cd "$repo" && cargo test -q --release -p cxl-passthrough --test kernel_real --no-run --message-format=json 2>/dev/null |
  grep '"name":"kernel_real"' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n1)
[ -x "$cli" ] && [ -x "$kreal" ] || skip "could not build the CLI or the kernel_real test binary"

copy_with_libs() { # BINARY DEST-ROOT DEST-PATH
  mkdir -p "$2$(dirname "$3")"
  cp "$1" "$2$3"
  # (a static binary has no libraries: ldd and grep fail, which is fine)
  { ldd "$1" 2>/dev/null || true; } | { grep -oE '/[^ ]+' || true; } | while read -r lib; do
    mkdir -p "$2$(dirname "$lib")"
    cp -L "$lib" "$2$lib"
  done
}

root=$work/l1root
rm -rf "$root" && mkdir -p "$root"/{bin,proc,sys,dev,tmp}
cp "$T/busybox" "$root/bin/busybox"
copy_with_libs "$cli" "$root" /lab/cxl-passthrough
copy_with_libs "$kreal" "$root" /lab/kernel_real
if [ -n "${CXL_LAB_SELFTEST:-}" ]; then
  [ -x "$CXL_LAB_SELFTEST" ] || skip "CXL_LAB_SELFTEST=$CXL_LAB_SELFTEST is not an executable"
  copy_with_libs "$CXL_LAB_SELFTEST" "$root" /lab/selftest
fi
if [ -n "${CXL_E2E_CLOUD_HYPERVISOR:-}" ]; then
  [ -x "$CXL_E2E_CLOUD_HYPERVISOR" ] || skip "CXL_E2E_CLOUD_HYPERVISOR=$CXL_E2E_CLOUD_HYPERVISOR is not an executable"
  copy_with_libs "$CXL_E2E_CLOUD_HYPERVISOR" "$root" /lab/cloud-hypervisor
  # (e)'s L2: the nested e2e's Linux 7.3 guest, its CXL modules, our Type-2 test driver
  # (when built) and its /init, exactly as run-nested.sh builds them.
  CXL_GUEST_TOOLS=$T bash "$repo/scripts/guest/nested/run-nested.sh" --runs 7.3:1 \
    --work "$work/nested" --l2-only "$root/l2" >&2 || skip "could not build the nested e2e's L2 payload (scripts/guest/fetch-tools.sh kernel73 busybox)"
  echo "@@run.nonce=$(cat "$root/l2/nonce")"
  # (the nested e2e's L2 command line; CXL_LAB_L2_CMDLINE replaces it, e.g. without quiet)
  printf 'CH_TIMEOUT=%s\nL2_CMDLINE="%s"\n' "${CXL_E2E_CH_TIMEOUT:-600}" \
    "${CXL_LAB_L2_CMDLINE:-console=ttyS0 iomem=relaxed panic=-1 quiet}" >"$root/lab/e.conf"
fi
cp "$here/l1-init.sh" "$root/init"
chmod +x "$root/init"
(cd "$root" && find . | "$T/busybox" cpio -o -H newc 2>/dev/null | gzip -1 >"$work/l1.cpio.gz")

data=()
IFS=: read -r -a dirs <<<"${CXL_LAB_QEMU_DATA:-/usr/share/seabios:/usr/share/qemu}"
for d in "${dirs[@]}"; do data+=(-L "$d"); done

echo "@@lab.qemu=$qemu"
echo "@@lab.kernel=$kernel"
# Topology (docs/lab.md): a CXL host bridge (pxb-cxl, HDM decoder for passthrough) -> a
# CXL root port -> a type-3 endpoint with 256 MiB of volatile memory and one HDM
# decoder that stays committed across resets like firmware-committed hardware
# (`hdm-decoders=1,hdm-keep-committed=on`, our QEMU patch); one 4 GiB CFMWS window targeting the host
# bridge; an emulated IOMMU for VFIO. L1's TSC rate is given (tsc_early_khz, what L1
# refines it to on this machine kind; CXL_LAB_L1_TSC_KHZ): KVM is built in and takes the
# early rate as its VMs' default, and when the refined rate differs beyond 250 ppm on a
# CPU without TSC scaling (TCG's SVM) KVM leaves the vCPU's TSC multiplier at 0 and an
# L2 Linux's clock stops (docs/uapi.md §6, finding 12). cxl_pci is kept from binding the endpoint at boot
# (initcall_blacklist): firmware would have committed the decoders before any driver,
# here L1's /init commits them first.
exec timeout "${CXL_LAB_QEMU_TIMEOUT:-900}" "$qemu" "${data[@]}" \
  -M q35,cxl=on -cpu EPYC -m 2G,maxmem=4G,slots=2 -smp 2 -nographic -no-reboot -nic none \
  -object memory-backend-ram,id=vmem0,share=on,size=256M \
  -device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1,hdm_for_passthrough=on \
  -device cxl-rp,port=1,bus=cxl.1,id=rp1,chassis=0,slot=2 \
  -device cxl-type3,bus=rp1,volatile-memdev=vmem0,id=cxl-vmem0,hdm-decoders=1,hdm-keep-committed=on,component-bar-size=128K \
  -M cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G \
  -device intel-iommu,intremap=off \
  -kernel "$kernel" -initrd "$work/l1.cpio.gz" \
  -append "console=ttyS0 panic=-1 quiet loglevel=4 tsc_early_khz=${CXL_LAB_L1_TSC_KHZ:-2600000} intel_iommu=on iommufd.allow_unsafe_interrupts=1 vfio_iommu_type1.allow_unsafe_interrupts=1 iomem=relaxed initcall_blacklist=cxl_pci_driver_init" \
  </dev/null
