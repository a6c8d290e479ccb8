#!/bin/busybox sh
# /init of the lab's L1 (Linux 7.3.4 + vfio-cxl v3, QEMU TCG): commits the CXL host
# bridge's and the type-3 endpoint's HDM decoder at the CFMWS window the way firmware
# would (QEMU leaves them uncommitted, v3 binds only committed decoders), binds vfio-pci
# to the endpoint, then runs against the real driver: (a) the v3 kernel selftest,
# (b) our probe --json, (c) the kernel_real tests, (d) demo --device, (e) the patched
# cloud-hypervisor with the device and an L2 guest (when given). Every line for
# the test is "@@key=value" (docs/lab.md lists them).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
kv() { echo "@@$1=$2"; }
lines() { # PREFIX: every stdin line as @@PREFIX=line
  while IFS= read -r l; do kv "$1" "$l"; done
}
hex() { printf '0x%x' "$1"; }
rd32() { echo $(($(devmem "$1" 32))); }
kv l1.kernel "$(uname -r)"
if [ -c /dev/kvm ]; then kv l1.kvm ok; else kv l1.kvm missing; fi

# --- the type-3 endpoint (class 0x0502xx) and its root port
ep=""
for d in /sys/bus/pci/devices/*; do
  read -r cls <"$d/class"
  case $cls in 0x0502*) ep=${d##*/} ;; esac
done
kv lab.endpoint "${ep:-none}"
[ -n "$ep" ] || { kv lab.done "no CXL endpoint"; poweroff -f; }
dev=/sys/bus/pci/devices/$ep
drv=none
[ -e "$dev/driver" ] && drv=$(basename "$(readlink "$dev/driver")")
kv lab.endpoint.driver_at_boot "$drv"

# --- CEDT: CHBS (host bridge component registers) and CFMWS (the window)
t=/sys/firmware/acpi/tables/CEDT
len=$(stat -c %s $t)
o=36
chbs="" win="" winsize=""
while [ $o -lt "$len" ]; do
  typ=$(hexdump -s $o -n 1 -e '1/1 "%u"' $t)
  sl=$(hexdump -s $((o + 2)) -n 2 -e '1/2 "%u"' $t)
  [ "$sl" -gt 0 ] || break
  if [ "$typ" = 0 ]; then
    chbs=$(($(hexdump -s $((o + 16)) -n 4 -e '1/4 "%u"' $t) + ($(hexdump -s $((o + 20)) -n 4 -e '1/4 "%u"' $t) << 32)))
  elif [ "$typ" = 1 ]; then
    win=$(($(hexdump -s $((o + 8)) -n 4 -e '1/4 "%u"' $t) + ($(hexdump -s $((o + 12)) -n 4 -e '1/4 "%u"' $t) << 32)))
    winsize=$(($(hexdump -s $((o + 16)) -n 4 -e '1/4 "%u"' $t) + ($(hexdump -s $((o + 20)) -n 4 -e '1/4 "%u"' $t) << 32)))
  fi
  o=$((o + sl))
done
kv lab.cedt "chbs=$(hex "${chbs:-0}") window=$(hex "${win:-0}") size=$(hex "${winsize:-0}")"

# HDM decoder capability in a component block at physical address $1 (the CXL.cache/mem
# capability array is at +0x1000); prints its address (decimal), empty if none.
hdm_in_block() {
  arr=$(($1 + 0x1000))
  h=$(rd32 $arr)
  n=$(((h >> 24) & 0xff)); k=1
  while [ $k -le $n ]; do
    c=$(rd32 $((arr + k * 4)))
    if [ $((c & 0xffff)) -eq 5 ]; then echo $((arr + ((c >> 20) & 0xfff))); return; fi
    k=$((k + 1))
  done
}
cfg32() { hexdump -s "$2" -n 4 -e '1/4 "%u"' "/sys/bus/pci/devices/$1/config"; }
# The endpoint's component block: Register Locator DVSEC (0x1E98, ID 8), BIR 1 entry.
ep_block() {
  off=256
  while [ $off -ge 256 ]; do
    h=$(cfg32 "$1" $off)
    [ "$h" -eq 0 ] && return
    if [ $((h & 0xffff)) -eq 35 ] && [ $(($(cfg32 "$1" $((off + 4))) & 0xffff)) -eq 7832 ] &&
      [ $(($(cfg32 "$1" $((off + 8))) & 0xffff)) -eq 8 ]; then
      rlen=$((($(cfg32 "$1" $((off + 4))) >> 20) & 0xfff)); e=0
      while [ $((12 + e * 8 + 8)) -le $rlen ]; do
        lo=$(cfg32 "$1" $((off + 12 + e * 8))); hi=$(cfg32 "$1" $((off + 16 + e * 8)))
        if [ $(((lo >> 8) & 0xff)) -eq 1 ]; then
          bar=$(sed -n "$(((lo & 7) + 1))p" "/sys/bus/pci/devices/$1/resource" | cut -d' ' -f1)
          echo $((bar + (lo & 0xffff0000) + (hi << 32)))
          return
        fi
        e=$((e + 1))
      done
    fi
    off=$(((h >> 20) & 0xffc))
  done
}
# commit HDM-ADDR TARGET0: decoder 0 = the window (256 MiB, the endpoint's memory),
# 1 way, target list byte 0, CTRL = COMMIT | LOCK (device-coherent). Prints CTRL after.
commit() {
  devmem $(($1 + 0x10)) 32 $((win & 0xffffffff))
  devmem $(($1 + 0x14)) 32 $((win >> 32))
  devmem $(($1 + 0x18)) 32 $((0x10000000))
  devmem $(($1 + 0x1c)) 32 0
  devmem $(($1 + 0x24)) 32 "$2"
  devmem $(($1 + 0x28)) 32 0
  devmem $(($1 + 0x04)) 32 2 # HDM Decoder Enable
  devmem $(($1 + 0x20)) 32 $((0x300))
  hex "$(rd32 $(($1 + 0x20)))"
}
if [ -n "$chbs" ] && [ -n "$win" ]; then
  hb=$(hdm_in_block "$chbs")
  kv lab.hb_hdm "$(hex "${hb:-0}")"
  rp_port=1 # the cxl-rp's port=1 (run-lab.sh)
  [ -n "$hb" ] && kv lab.hb_commit "ctrl=$(commit "$hb" $rp_port)"
  echo 1 >"$dev/enable" # memory decoding, so the endpoint's BAR is reachable
  blk=$(ep_block "$ep")
  eh=""
  [ -n "$blk" ] && eh=$(hdm_in_block "$blk")
  kv lab.ep_hdm "$(hex "${eh:-0}")"
  [ -n "$eh" ] && kv lab.ep_commit "ctrl=$(commit "$eh" 0)"
fi

# --- vfio-pci (the device keeps decoder 0 across the resets VFIO does: hdm-keep-committed)
if [ "$drv" != none ]; then echo "$ep" >"$dev/driver/unbind"; fi
kv lab.reset_method "$(cat "$dev/reset_method" 2>/dev/null)"
echo vfio-pci >"$dev/driver_override"
echo "$ep" >/sys/bus/pci/drivers_probe
drv=none
[ -e "$dev/driver" ] && drv=$(basename "$(readlink "$dev/driver")")
kv lab.endpoint.driver "$drv"
dmesg | grep -iE 'vfio|cxl' | lines lab.dmesg.bind
ls /dev/vfio /dev/vfio/devices 2>/dev/null | tr '\n' ' ' | lines lab.devvfio

# --- (a) the v3 kernel selftest
if [ -x /lab/selftest ]; then
  /lab/selftest "$ep" >/tmp/st.log 2>&1
  kv lab.selftest.rc $?
  lines lab.selftest </tmp/st.log
fi
# --- (b) our probe (and what the kernel said of the component BAR, for its sparse areas)
kv lab.bar0 "$(sed -n 1p "$dev/resource")"
/lab/cxl-passthrough probe --device "$ep" --json >/tmp/probe.json 2>/tmp/probe.err
kv lab.probe.rc $?
kv lab.probe.json "$(tr -d '\n' </tmp/probe.json)"
lines lab.probe.err </tmp/probe.err
# --- (c) the kernel backend on the real device
# (a hang limit, not a time budget: a hung step reports what it printed and the kernel's
# last words instead of eating QEMU's timeout; one run of 8 hung here once, unexplained)
timeout 300 env CXL_TEST_VFIO_DEVICE="$ep" /lab/kernel_real --test-threads=1 --nocapture >/tmp/kr.log 2>&1
rc=$?
kv lab.kernel_real.rc $rc
[ $rc = 0 ] || dmesg | tail -n 40 | lines lab.kernel_real.dmesg
lines lab.kernel_real </tmp/kr.log
# --- (d) the demo on the real device (nested KVM in L1)
timeout 600 /lab/cxl-passthrough demo --device "$ep" >/tmp/demo.log 2>&1
rc=$?
kv lab.demo.rc $rc
[ $rc -lt 124 ] || dmesg | tail -n 40 | lines lab.demo.dmesg
lines lab.demo </tmp/demo.log
# --- (e) the patched cloud-hypervisor on the real device, booting the nested e2e's L2
# (scripts/guest/nested/l2-init.sh: window, driver region, FLR checks), as one case
# between @@run.begin/@@run.end like the nested test's. L1 plays the simulator's test-only
# parts through the device's DPA region (kernel_real's lab_device_memory tool): it seeds
# DPA[0..16] before cloud-hypervisor starts, and after it exited it reports the device
# memory where the guest wrote (the VMM's `host view of DPA` lines of a simulated
# device). Not /dev/mem: devmem maps O_SYNC (uncached), which PAT refuses on the window
# the kernel maps write-back, and read()/write() stop at the end of RAM.
if [ -x /lab/cloud-hypervisor ] && [ -d /l2/7.3 ]; then
  . /lab/e.conf # CH_TIMEOUT, L2_CMDLINE
  dmesg | grep -iE 'tsc|clocksource' | lines lab.e.l1clock # (L2's clock runs on L1's)
  dpa_tool() { CXL_TEST_VFIO_DEVICE=$ep /lab/kernel_real --ignored --exact lab_device_memory --nocapture 2>&1; }
  # the simulator's seed at DPA 0, zeros where the guest will write (0x40..0x100)
  CXL_LAB_DPA_SEED=CXL-SIM-DPA-SEED dpa_tool | grep -E 'lab-dpa|panicked|Error' | lines lab.e.seed
  kv l1.uapi_revision.1 "$(sed -n 's/.*"uapi_revision": *"\([^"]*\)".*/\1/p' /tmp/probe.json | head -n1)"
  args="--platform num_pci_segments=2 --device path=/sys/bus/pci/devices/$ep,cxl=on,pci_segment=1,id=cxl0"
  kv run.begin lab-7.3-1dev
  kv l1.ch_args "$args"
  kv l1.ch_start "$(cut -d' ' -f1 /proc/uptime)"
  # shellcheck disable=SC2086
  timeout "$CH_TIMEOUT" /lab/cloud-hypervisor -vv --log-file /ch.log \
    --kernel /l2/7.3/vmlinux --initramfs /l2/7.3/initramfs.cpio.gz \
    --cmdline "$L2_CMDLINE" \
    --serial tty --console off --memory size=512M --cpus boot=1 $args </dev/null
  kv l1.ch_exit "$?"
  kv l1.ch_end "$(cut -d' ' -f1 /proc/uptime)"
  grep -E 'cxl|CXL|rror|anic|vfio|VFIO' /ch.log 2>/dev/null | grep -v VmConfig | lines l1.chlog
  CXL_LAB_DPA_VIEW=0x40,0x80,0xc0,0xe0 dpa_tool | sed -n 's/^lab-dpa: DPA\[\(.*\)$/lab: L1 after cloud-hypervisor exited: host view of DPA[\1 || (cxl0)/p' | lines l1.chlog
  kv run.end lab-7.3-1dev
fi
dmesg | grep -iE 'vfio|cxl' | lines lab.dmesg.end
kv lab.done ok
poweroff -f
