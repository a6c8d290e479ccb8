#!/bin/busybox sh
# /init of the L1 guest (QEMU TCG: nested SVM on x86_64, virtualization=on on arm64):
# loads KVM (modules on x86_64; built in on arm64), then for every case in
# /nested.conf runs the patched cloud-hypervisor on that case's L2 kernel + initramfs with
# one or two simulated CXL devices, and prints cloud-hypervisor's CXL log lines after it
# exited. Lines for the test are "@@key=value"; each case sits between @@run.begin and
# @@run.end (README.md next to this file).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
kv() { echo "@@$1=$2"; }
now() { cut -d' ' -f1 /proc/uptime; }
kv l1.init "$(now)"
kv l1.kernel "$(uname -r) $(uname -m)"
export LD_LIBRARY_PATH=/lib # aarch64: cloud-hypervisor's libraries (run-nested.sh)
for m in $(cat /modules.list); do
  if insmod "/modules/$m.ko" 2>/tmp/err; then kv "l1.insmod.$m" ok; else kv "l1.insmod.$m" "failed $(cat /tmp/err)"; fi
done
if [ -c /dev/kvm ]; then kv l1.kvm ok; else kv l1.kvm missing; fi
# shellcheck disable=SC1091
L2_FIRMWARE=""
. /nested.conf # RUNS ("KERNEL:DEVICES ..."), CH_TIMEOUT, L2_KERNEL (file name), L2_CMDLINE,
# L2_FIRMWARE (arm64, optional: UEFI firmware; the L2 then boots from its ESP, esp.img)
[ -z "$L2_FIRMWARE" ] || kv l1.l2_firmware "$L2_FIRMWARE"
for r in $RUNS; do
  # KERNEL:DEVICES[:REVISION] (run-nested.sh checked it)
  k=${r%%:*} rest=${r#*:}
  n=${rest%%:*} rev=v3
  [ "$rest" = "$n" ] || rev=${rest#*:}
  # The label names the first device's revision unless it is the default v3.
  label="$k-${n}dev"
  [ "$rev" = v3 ] || label="$label-$rev"
  # Device i (1-based) on PCI segment i; the first is a simulator of revision REVISION
  # (default v3), the second a v2 one. Ids cxl0, cxl1 name the device in the VMM's log
  # (its test-port lines end in "(cxlN)").
  args="--platform num_pci_segments=$((n + 1)) --device path=sim:$rev,cxl=on,pci_segment=1,id=cxl0"
  [ "$n" = 2 ] && args="$args --device path=sim:v2,cxl=on,pci_segment=2,id=cxl1"
  kv run.begin "$label"
  kv l1.ch_args "$args"
  kv l1.l2_cmdline "$L2_CMDLINE"
  kv l1.ch_start "$(now)"
  rm -f /ch.log
  # The payload: the kernel directly, or the UEFI firmware and the ESP it boots the
  # kernel from (its startup.nsh carries the same command line).
  if [ -n "$L2_FIRMWARE" ]; then
    set -- --firmware "$L2_FIRMWARE" --disk "path=/l2/$k/esp.img,readonly=on"
  else
    set -- --kernel "/l2/$k/$L2_KERNEL" --initramfs "/l2/$k/initramfs.cpio.gz" --cmdline "$L2_CMDLINE"
  fi
  # shellcheck disable=SC2086
  timeout "$CH_TIMEOUT" /ch/cloud-hypervisor -vv --log-file /ch.log "$@" \
    --serial tty --console off --memory size=512M --cpus boot=1 $args </dev/null
  kv l1.ch_exit "$?"
  kv l1.ch_end "$(now)"
  grep -E 'cxl|CXL|rror|anic|BAR|WARN' /ch.log 2>/dev/null | grep -v VmConfig | sed 's/^/@@l1.chlog=/'
  kv run.end "$label"
done
kv l1.done "$(now)"
poweroff -f
