#!/bin/busybox sh
# /init of the L2 guest (cloud-hypervisor with simulated CXL devices): loads the CXL
# modules, then reports what Linux shows as "@@key=value" lines and runs the memory and
# FLR checks through the device BAR and the window (/dev/mem, booted with iomem=relaxed).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
kv() { echo "@@$1=$2"; }
stamp() { kv "l2.t.$1" "$(cut -d' ' -f1 /proc/uptime)"; } # phase timings
hex() { printf '0x%x' "$1"; }
kv l2.init "$(cut -d' ' -f1 /proc/uptime)"
kv l2.kernel "$(uname -r)"
kv l2.arch "$(uname -m)"
kv l2.cmdline "$(cat /proc/cmdline)"
# ACPI or device tree (an arm64 L2 boots with cloud-hypervisor's FDT unless told
# acpi=force acpi_rsdp=... or booted through its UEFI firmware): the tables Linux found,
# else "none".
tables=""
for t in /sys/firmware/acpi/tables/*; do [ -f "$t" ] && tables="$tables ${t##*/}"; done
[ -n "$tables" ] || tables=" none"
kv l2.acpi_tables "${tables# }"
# shellcheck disable=SC1091
. /e2e.conf # NONCE (decimal u32)

for m in $(cat /modules.list); do
  if insmod "/modules/$m.ko" 2>/tmp/err; then kv "l2.insmod.$m" ok; else kv "l2.insmod.$m" "failed $(cat /tmp/err)"; fi
done
stamp modules
i=0
while [ ! -e /sys/bus/cxl/devices/root0 ] && [ $i -lt 20 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.5 # let the port probes settle
# Our Type-2 test driver (7.3 guests, when built; tests/guest-driver/): it registers each
# simulated device with the CXL core (memdev), which assembles the region from the
# committed and locked decoders; the driver maps it and does I/O on request (t2_io).
if [ -e /modules/cxl_t2_test.ko ]; then
  if insmod /modules/cxl_t2_test.ko 2>/tmp/err; then kv l2.insmod.cxl_t2_test ok; else kv l2.insmod.cxl_t2_test "failed $(cat /tmp/err)"; fi
  sleep 0.5
else
  kv l2.t2driver absent
fi

# --- config space: Linux's view (sysfs) when it exposes the extended space, else ECAM
# (MCFG from ACPI) through /dev/mem, so later checks still run; the source is reported.
# ECAM base of bus 0 per segment from the MCFG ("ecam_<seg>=<base>", decimal), read once.
t=/sys/firmware/acpi/tables/MCFG
if [ -r $t ]; then
  n=$((($(stat -c %s $t) - 44) / 16)); j=0
  while [ $j -lt $n ]; do
    o=$((44 + j * 16))
    lo=$(hexdump -s $o -n 4 -e '1/4 "%u"' $t)
    hi=$(hexdump -s $((o + 4)) -n 4 -e '1/4 "%u"' $t)
    seg=$(hexdump -s $((o + 8)) -n 2 -e '1/2 "%u"' $t)
    eval "ecam_$seg=$((lo + (hi << 32)))"
    j=$((j + 1))
  done
fi
rd32_mem() { echo $(($(devmem "$1" 32))); }
cfg_rd32() { # bdf offset -> decimal
  f=/sys/bus/pci/devices/$1/config
  if [ "$2" -lt "$(stat -c %s "$f")" ]; then
    hexdump -s "$2" -n 4 -e '1/4 "%u"' "$f"
    return
  fi
  seg=$((0x${1%%:*})); rest=${1#*:}; bus=$((0x${rest%%:*})); df=${rest#*:}
  dv=$((0x${df%.*})); fn=${df#*.}
  eval "base=\${ecam_$seg:-}"
  [ -n "$base" ] || { echo 4294967295; return; }
  rd32_mem $((base + (bus << 20) + (dv << 15) + (fn << 12) + $2))
}
find_dvsec() { # bdf dvsec-id -> offset (decimal), empty if absent
  b=$1; id=$2; off=256; n=0; dump=""
  # When Linux exposes the extended space, walk one dump of it (a process per dword is
  # slow under nested TCG); otherwise read through ECAM.
  if [ "$(stat -c %s "/sys/bus/pci/devices/$b/config")" -gt 256 ]; then
    dump=1
    # shellcheck disable=SC2046
    set -- $(hexdump -v -e '1/4 "%u "' "/sys/bus/pci/devices/$b/config")
  fi
  while [ $off -ge 256 ] && [ $n -lt 64 ]; do
    if [ -n "$dump" ]; then eval "h=\${$((off / 4 + 1))}"; else h=$(cfg_rd32 "$b" $off); fi
    [ "$h" -eq 4294967295 ] || [ "$h" -eq 0 ] && return
    if [ $((h & 0xffff)) -eq 35 ]; then
      if [ -n "$dump" ]; then
        eval "h1=\${$((off / 4 + 2))} h2=\${$((off / 4 + 3))}"
      else
        h1=$(cfg_rd32 "$b" $((off + 4))); h2=$(cfg_rd32 "$b" $((off + 8)))
      fi
      if [ $((h1 & 0xffff)) -eq 7832 ] && [ $((h2 & 0xffff)) -eq "$id" ]; then echo $off; return; fi
    fi
    off=$(((h >> 20) & 0xffc)); n=$((n + 1))
  done
}

stamp settled
cxldevs=""
for d in /sys/bus/pci/devices/*; do
  b=${d##*/}
  real=$(readlink -f "$d"); p=${real%/*}; p=${p##*/}
  pc=none
  [ -e "/sys/bus/pci/devices/$p/class" ] && read -r pc <"/sys/bus/pci/devices/$p/class"
  cs=$(stat -c %s "$d/config")
  read -r ven <"$d/vendor"; read -r dev <"$d/device"; read -r cls <"$d/class"
  kv "pci.$b" "vendor=$ven device=$dev class=$cls parent=$p parent_class=$pc cfg_size=$cs"
  # Only devices on a non-zero segment can be CXL devices here; their DVSEC is looked
  # up in Linux's view and (if hidden from Linux) through ECAM.
  case $b in 0000:*) continue ;; esac
  src=sysfs
  [ "$cs" -gt 256 ] || src=ecam
  dv=$(find_dvsec "$b" 0)
  [ -n "$dv" ] || continue
  kv "pci.$b.cxl_dvsec" "$(hex "$dv") source=$src"
  cxldevs="$cxldevs $b"
  if [ -e "$d/t2_region" ]; then
    kv "t2.$b.region" "$(cat "$d/t2_region")"
    mds=""
    for m in /sys/bus/cxl/devices/mem*; do
      [ -e "$m" ] && case $(readlink -f "$m") in */$b/*) mds="$mds ${m##*/}" ;; esac
    done
    kv "t2.$b.memdev" "${mds# }"
  fi
done
kv cxl.pci_devices "${cxldevs# }"
stamp pci

# --- the CXL core's view
for c in /sys/bus/cxl/devices/*; do
  [ -e "$c" ] || continue
  n=${c##*/}; drv=none
  [ -e "$c/driver" ] && drv=$(basename "$(readlink "$c/driver")")
  kv "cxl.dev.$n" "$drv"
  for a in start size locked cap_type2 cap_type3 target_type target_list interleave_ways mode resource commit target0; do
    [ -r "$c/$a" ] && read -r v <"$c/$a" 2>/dev/null && kv "cxl.$n.$a" "$v"
  done
  if [ -e "$c/uport" ]; then
    kv "cxl.$n.uport" "$(basename "$(readlink "$c/uport")")"
    dps=""
    for dp in "$c"/dport*; do [ -e "$dp" ] && dps="$dps ${dp##*/}:$(basename "$(readlink "$dp")")"; done
    kv "cxl.$n.dports" "${dps# }"
  fi
done
grep -iE 'cxl|region|dax|kmem|soft reserved' /proc/iomem | sed 's/^ *//' | while read -r l; do kv iomem "$l"; done
stamp cxl

# --- HDM decoder 0 through the device BAR, device memory through the window
hdm_base() { # bdf -> physical address of the HDM decoder capability (decimal), empty if
  # none. The component registers are looked for at the BAR address in the config space
  # and, when nothing answers there (all-ones), at the address the device had when Linux
  # enumerated it (its first "BAR n [mem ...]" kernel line; Linux may have moved the BAR
  # since, a move the VMM may not have followed). What it walked, with the address Linux
  # assigned (sysfs) and the one used, goes to /tmp/hdm_walk.
  printf 'register_locator=' >/tmp/hdm_walk
  rl=$(find_dvsec "$1" 8)
  printf '%s' "${rl:-none}" >>/tmp/hdm_walk
  [ -n "$rl" ] || return
  len=$((($(cfg_rd32 "$1" $((rl + 4))) >> 20) & 0xfff))
  e=0
  while [ $((12 + e * 8 + 8)) -le "$len" ]; do
    lo=$(cfg_rd32 "$1" $((rl + 12 + e * 8))); hi=$(cfg_rd32 "$1" $((rl + 16 + e * 8)))
    if [ $(((lo >> 8) & 0xff)) -eq 1 ]; then
      bir=$((lo & 7))
      sysfs=$(sed -n "$((bir + 1))p" "/sys/bus/pci/devices/$1/resource" | cut -d' ' -f1)
      blo=$(cfg_rd32 "$1" $((16 + bir * 4))); bar=$((blo & ~15))
      [ $(((blo >> 1) & 3)) -eq 2 ] && bar=$((bar + ($(cfg_rd32 "$1" $((20 + bir * 4))) << 32)))
      cfg=$bar
      arr=$((bar + (lo & 0xffff0000) + (hi << 32) + 0x1000))
      h=$(rd32_mem $arr); k=1
      if [ "$h" -eq 4294967295 ]; then
        boot=$(dmesg | sed -n "s/.* $1: BAR $bir \[mem \(0x[0-9a-f]*\)-.*/\1/p" | head -n1)
        if [ -n "$boot" ]; then
          bar=$((boot)); arr=$((bar + (lo & 0xffff0000) + (hi << 32) + 0x1000)); h=$(rd32_mem $arr)
        fi
      fi
      printf ' bir=%s sysfs=%s config=%s used=%s cap_array=%s header=%s' "$bir" "$(hex "$sysfs")" "$(hex "$cfg")" "$(hex $bar)" "$(hex $arr)" "$(hex "$h")" >>/tmp/hdm_walk
      while [ $k -le $(((h >> 24) & 0xff)) ]; do
        c=$(rd32_mem $((arr + k * 4)))
        if [ $((c & 0xffff)) -eq 5 ]; then echo $((arr + ((c >> 20) & 0xfff))); return; fi
        k=$((k + 1))
      done
    fi
    e=$((e + 1))
  done
}
hostview() { # DPA-offset (< 256) device-index: the VMM logs that device's memory there
  # (test-only DPA probe of cloud-hypervisor's cxl-sim build: x86_64 I/O port 0xce0 +
  # 4 * index, /dev/port writes one byte, the offset; aarch64 MMIO 0x0904_0000 + 4 * index,
  # a dword write of the offset).
  case "$(uname -m)" in
    x86_64) printf "\\$(printf %o "$1")" | dd of=/dev/port bs=1 seek=$((0xce0 + 4 * $2)) count=1 conv=notrunc 2>/dev/null ;;
    aarch64) devmem $((0x09040000 + 4 * $2)) 32 "$1" ;;
  esac
}
t2start() { # bdf -> region start (decimal) when our driver owns the region, else empty
  f=/sys/bus/pci/devices/$1/t2_region
  [ -e "$f" ] || return
  v=$(sed -n 's/.*start=\(0x[0-9a-f]*\).*/\1/p' "$f")
  [ -n "$v" ] && echo $((v))
}
# Window dword access: through our driver's mapping when it owns the region (Linux then
# refuses /dev/mem there), else /dev/mem. check_dev sets T2S (the region start, empty
# without the driver) once per device. wrd BDF ADDR -> decimal; wwr BDF ADDR VALUE.
wrd() {
  if [ -n "$T2S" ]; then
    echo $(($2 - T2S)) >"/sys/bus/pci/devices/$1/t2_mem" && echo $(($(cat "/sys/bus/pci/devices/$1/t2_mem")))
  else
    rd32_mem "$2"
  fi
}
wwr() {
  if [ -n "$T2S" ]; then echo "$(($2 - T2S)) $3" >"/sys/bus/pci/devices/$1/t2_mem"; else devmem "$2" 32 "$3"; fi
}
check_dev() { # bdf phase index
  b=$1; ph=$2; ix=$3
  # Memory Space on, as a driver's pci_enable_device turns it on: a BAR that Linux
  # reassigned while decoding was off (an arm64 device-tree guest reassigns every BAR)
  # moves in the VMM only then. Without a driver nothing else enables the device.
  [ -w "/sys/bus/pci/devices/$b/enable" ] && echo 1 >"/sys/bus/pci/devices/$b/enable" 2>/dev/null
  hdm=$(hdm_base "$b")
  kv "bar.$b.$ph" "$(cat /tmp/hdm_walk)"
  if [ -z "$hdm" ]; then kv "hdm.$b.$ph" "no HDM decoder capability found"; return; fi
  base=$(($(rd32_mem $((hdm + 0x10))) + ($(rd32_mem $((hdm + 0x14))) << 32)))
  size=$(($(rd32_mem $((hdm + 0x18))) + ($(rd32_mem $((hdm + 0x1c))) << 32)))
  ctrl=$(rd32_mem $((hdm + 0x20)))
  kv "hdm.$b.$ph" "base=$(hex $base) size=$(hex $size) ctrl=$(hex "$ctrl") lock=$(((ctrl >> 8) & 1)) committed=$(((ctrl >> 10) & 1)) target_type=$(((ctrl >> 12) & 1))"
  # The host seeded offset 0; the guest writes 4 dwords at 0x40 (pre) / 0x80 (post FLR).
  w=""
  T2S=$(t2start "$b")
  via=devmem
  [ -n "$T2S" ] && via=t2_mem
  kv "dpa.$b.$ph.via" "$via"
  for o in 0 4 8 12; do w="$w $(hex "$(wrd "$b" $((base + o)))")"; done
  kv "dpa.$b.$ph.seed" "${w# }"
  po=64
  [ "$ph" = post ] && po=128
  # pattern: nonce, ~nonce, "LE2E", offset | device index << 16
  tag=$((po | (ix << 16)))
  set -- "$NONCE" $((NONCE ^ 0xffffffff)) 1160922444 "$tag"
  o=0
  for v in "$@"; do wwr "$b" $((base + po + o)) "$v"; o=$((o + 4)); done
  r=""
  for o in 0 4 8 12; do r="$r $(hex "$(wrd "$b" $((base + po + o)))")"; done
  kv "dpa.$b.$ph.wrote" "$(hex "$po"):$(hex "$NONCE") $(hex $((NONCE ^ 0xffffffff))) 0x4532454c $(hex "$tag")"
  kv "dpa.$b.$ph.readback" "$(hex "$po"):${r# }"
  [ "$ph" = post ] && { r=""; for o in 0 4 8 12; do r="$r $(hex "$(wrd "$b" $((base + 64 + o)))")"; done; kv "dpa.$b.post.kept" "0x40:${r# }"; }
  hostview "$po" "$ix"
  # The driver's I/O through its mapping of the region: 0xc0 (pre) / 0xe0 (post FLR).
  io=/sys/bus/pci/devices/$b/t2_io
  if [ -e "$io" ]; then
    po=192
    [ "$ph" = post ] && po=224
    tag=$((po | (ix << 16)))
    if echo "$po $tag $NONCE" >"$io" 2>/tmp/err; then kv "t2.$b.$ph.io" "$(cat "$io")"; else kv "t2.$b.$ph.io" "failed $(cat /tmp/err)"; fi
    hostview "$po" "$ix"
  fi
}
ix=0
for b in $cxldevs; do check_dev "$b" pre $ix; ix=$((ix + 1)); done
stamp pre
# (check_dev sets the global ix: the FLR loop counts with its own variable)
n=0
for b in $cxldevs; do
  n=$((n + 1))
  d=/sys/bus/pci/devices/$b
  kv "flr.$b.reset_method" "$(cat "$d/reset_method" 2>/dev/null || echo none)"
  if [ ! -e "$d/reset" ]; then kv "flr.$b" "unavailable (no sysfs reset)"; continue; fi
  if echo 1 >"$d/reset" 2>/tmp/err; then kv "flr.$b" ok; else kv "flr.$b" "failed $(cat /tmp/err)"; fi
  check_dev "$b" post $((n - 1))
done

stamp flr
# Decoders and regions as the CXL core shows them after the FLRs.
for c in /sys/bus/cxl/devices/decoder* /sys/bus/cxl/devices/region*; do
  [ -e "$c" ] || continue
  n=${c##*/}
  for a in start size locked commit resource; do
    [ -r "$c/$a" ] && read -r v <"$c/$a" 2>/dev/null && kv "cxl.post.$n.$a" "$v"
  done
done
dmesg | grep -iE 'cxl|acpi0016|acpi0017|pci000[1-9]|000[1-9]:0|acpi (bios )?(error|warning)|_PRT|irq.*000[1-9]:|acpi: (rsdp|xsdt|iort|mcfg|cedt)|acpi_rsdp|its@|iort' | while read -r l; do kv dmesg "$l"; done
kv l2.done "$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
