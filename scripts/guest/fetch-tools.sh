#!/usr/bin/env bash
# Fetch the guest-lab tools from Debian packages into a cache under target/guest-tools/:
#   acpica/   trixie's acpica-tools + libc6, run through their own loader (bin/iasl, bin/acpiexec)
#   kernel/   Debian trixie's 6.12 kernel image + modules (dpkg-deb -x, nothing installed)
#   kernel-7.3/  the same for trixie-backports' 7.3 kernel (tool name kernel73)
#   busybox   busybox-static for the initramfs
#   arm64/    the arm64 guest (tool name arm64): trixie's arm64 6.12 kernel (kernel/) and
#             busybox-static (busybox), fetched through a private arm64 apt state under
#             arm64/apt/ (the system's dpkg architectures and apt lists are left alone),
#             and the UEFI firmware QEMU_EFI.fd (qemu-efi-aarch64, arch all)
#   arm64/l1-qemu/  trixie's arm64 qemu-system-arm with its libraries, to run inside an
#             arm64 L1 (tool name arm64-nested; scripts/guest/arm64-nested-probe.sh)
# and QEMU (qemu-system-x86, and for arm64 qemu-system-arm, from bookworm-backports: the
# system-wide installs).
#
# Idempotent (each step is skipped when its result is cached), safe to run concurrently
# (flock), needs no stdin. Prints one "SKIP:" line per tool it could not get and still
# exits 0. scripts/test.sh (README's test command) runs it before cargo test; tests never
# do: they only check for the files below and skip loudly without them.
# Usage: scripts/guest/fetch-tools.sh [acpica|qemu|kernel|kernel73|busybox|arm64|arm64-nested ...]
# (default: acpica qemu kernel busybox; the others only when asked for)
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
T=${CXL_GUEST_TOOLS:-$repo/target/guest-tools}
mkdir -p "$T/bin" "$T/debs"
exec 9>"$T/.lock"
flock 9

log() { printf 'guest-tools: %s\n' "$*" >&2; }
skip() { printf '\n*** SKIP: guest-tools: %s ***\n\n' "$*" >&2; }

apt_ok=1
apt_why="no apt/root" # why setup_apt failed, for the SKIP lines
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
  apt_ok=0
fi
APT=(apt-get -q -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
export DEBIAN_FRONTEND=noninteractive

# Debian suites with a low pin (never upgrade the system from trixie), then apt-get update
# once (or when the lists are gone).
setup_apt() {
  [ "$apt_ok" = 1 ] || return 1
  [ -f "$T/.apt-ready" ] && ls /var/lib/apt/lists/*_dists_trixie-backports_* >/dev/null 2>&1 && return 0
  bash "$repo/scripts/apt-suites.sh" || return 1
  log "apt-get update"
  if "${APT[@]}" update >"$T/apt-update.log" 2>&1; then
    touch "$T/.apt-ready"
    return 0
  fi
  log "apt-get update failed, see $T/apt-update.log"
  apt_why="apt-get update failed, see $T/apt-update.log"
  return 1
}

# apt-get download PKG... -t SUITE into $DEBS (cached), print the .deb paths. arm64_apt
# points DEBS and APT_STATE (extra apt options) at the private arm64 apt state.
DEBS=$T/debs
APT_STATE=()
download() {
  local suite=$1
  shift
  (cd "$DEBS" && "${APT[@]}" ${APT_STATE[@]+"${APT_STATE[@]}"} download -t "$suite" "$@" >>"$T/download.log" 2>&1) || return 1
  local p
  for p in "$@"; do
    ls -t "$DEBS/${p}_"*.deb 2>/dev/null | head -n1
  done
}

get_acpica() {
  if [ -x "$T/bin/iasl" ] && [ -x "$T/bin/acpiexec" ]; then return 0; fi
  setup_apt || { skip "ACPICA (iasl, acpiexec): $apt_why"; return 1; }
  local debs
  debs=$(download trixie acpica-tools libc6) || { skip "ACPICA: apt-get download -t trixie acpica-tools libc6 failed"; return 1; }
  rm -rf "$T/acpica" && mkdir -p "$T/acpica"
  local d
  for d in $debs; do dpkg-deb -x "$d" "$T/acpica" || { skip "ACPICA: cannot extract $d"; return 1; }; done
  local R=$T/acpica
  for tool in iasl acpiexec; do
    cat >"$T/bin/$tool" <<WRAP
#!/bin/sh
# trixie's $tool with trixie's libc (the system libc is older): run through its own loader.
exec "$R/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "$R/usr/lib/x86_64-linux-gnu" "$R/usr/bin/$tool" "\$@"
WRAP
    chmod +x "$T/bin/$tool"
  done
  if ! "$T/bin/iasl" -v >/dev/null 2>&1; then
    rm -f "$T/bin/iasl" "$T/bin/acpiexec"
    skip "ACPICA: extracted iasl does not run"
    return 1
  fi
  log "ACPICA ready: $("$T/bin/iasl" -v 2>/dev/null | grep -m1 -i version)"
}

# install_qemu BINARY PACKAGE: BINARY linked into $T/bin; when it is missing, PACKAGE is
# installed from bookworm-backports first (log in $T/PACKAGE-install.log).
install_qemu() {
  local bin=$1 pkg=$2
  if ! command -v "$bin" >/dev/null; then
    setup_apt || { skip "QEMU ($bin): $apt_why"; return 1; }
    log "apt-get install -t bookworm-backports $pkg"
    if ! "${APT[@]}" install -y --no-install-recommends -t bookworm-backports "$pkg" >"$T/$pkg-install.log" 2>&1; then
      skip "QEMU: apt-get install -t bookworm-backports $pkg failed, see $T/$pkg-install.log"
      return 1
    fi
  fi
  ln -sf "$(command -v "$bin")" "$T/bin/$bin"
}

get_qemu() { install_qemu qemu-system-x86_64 qemu-system-x86; }

# extract_kernel SUITE DIR PACKAGE...: the packages' vmlinuz and module tree into $T/DIR
# (6.12 ships both in one -unsigned package; 7.3 splits them into linux-binary-* and
# linux-modules-*).
extract_kernel() {
  local suite=$1 dir=$2
  shift 2
  local debs
  debs=$(download "$suite" "$@") || { skip "guest kernel: apt-get download -t $suite $* failed"; return 1; }
  rm -rf "$T/$dir" "$T/$dir.tmp" && mkdir -p "$T/$dir.tmp/root"
  local d
  for d in $debs; do
    dpkg-deb -x "$d" "$T/$dir.tmp/root" || { skip "guest kernel: cannot extract $d"; return 1; }
  done
  local vmlinuz mods
  # boot/vmlinuz-<abi> (6.12) or usr/lib/modules/<abi>/vmlinuz (7.x)
  vmlinuz=$(ls "$T/$dir.tmp/root/boot/"vmlinuz-* "$T/$dir.tmp/root/usr/lib/modules/"*/vmlinuz 2>/dev/null | head -n1)
  mods=$(ls -d "$T/$dir.tmp/root/usr/lib/modules/"* "$T/$dir.tmp/root/lib/modules/"* 2>/dev/null | head -n1)
  [ -n "$vmlinuz" ] && [ -n "$mods" ] || { skip "guest kernel: $* has no vmlinuz/modules"; return 1; }
  mv "$vmlinuz" "$T/$dir.tmp/vmlinuz"
  mv "$mods" "$T/$dir.tmp/modules"
  echo "$*" >"$T/$dir.tmp/package"
  rm -rf "$T/$dir.tmp/root"
  mv "$T/$dir.tmp" "$T/$dir"
  rm -f $debs # ~100 MB; the extracted tree is the cache
  log "guest kernel ready: $* in $T/$dir"
}

get_kernel() {
  if [ -f "$T/kernel/vmlinuz" ] && [ -d "$T/kernel/modules" ]; then return 0; fi
  setup_apt || { skip "guest kernel: $apt_why"; return 1; }
  # The newest generic (not -rt, not -cloud) unsigned 6.12 image built for trixie (+deb13;
  # the +deb12 ones are bookworm-backports builds). The name carries the ABI number.
  local pkg
  pkg=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb13-amd64-unsigned$' 2>/dev/null |
    awk '{print $1}' | sort -V | tail -n1)
  [ -n "$pkg" ] || { skip "guest kernel: no linux-image-6.12.*-amd64-unsigned in the apt lists"; return 1; }
  extract_kernel trixie kernel "$pkg"
}

# trixie-backports' 7.3 kernel (linux-image-amd64 7.3.4-1~bpo13+1 per guest-lab notes).
# From 7.x Debian splits the generic image: linux-binary-<abi>-amd64 holds vmlinuz,
# linux-modules-<abi>-amd64 the modules (linux-image-<abi>-amd64 is an empty dependency).
get_kernel73() {
  if [ -f "$T/kernel-7.3/vmlinuz" ] && [ -d "$T/kernel-7.3/modules" ]; then return 0; fi
  setup_apt || { skip "7.3 guest kernel: $apt_why"; return 1; }
  local abi
  abi=$(apt-cache search --names-only '^linux-binary-7\.3\.[0-9]+\+deb13-amd64$' 2>/dev/null |
    awk '{print $1}' | sed 's/^linux-binary-//' | sort -V | tail -n1)
  [ -n "$abi" ] || { skip "7.3 guest kernel: no linux-binary-7.3.*+deb13-amd64 in the apt lists"; return 1; }
  extract_kernel trixie-backports kernel-7.3 "linux-binary-$abi" "linux-modules-$abi"
}

# extract_busybox SUITE DEST: busybox-static's binary at DEST (bin/ in bookworm, usr/bin/
# in trixie).
extract_busybox() {
  local suite=$1 dest=$2 deb
  deb=$(download "$suite" busybox-static) || { skip "busybox-static: apt-get download -t $suite failed"; return 1; }
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  dpkg-deb -x "$deb" "$dest.tmp" && mv "$(ls "$dest.tmp"/bin/busybox "$dest.tmp"/usr/bin/busybox 2>/dev/null | head -n1)" "$dest" || {
    skip "busybox-static: cannot extract $deb"
    return 1
  }
  rm -rf "$dest.tmp"
}

get_busybox() {
  if [ -x "$T/busybox" ]; then return 0; fi
  setup_apt || { skip "busybox-static: $apt_why"; return 1; }
  extract_busybox bookworm "$T/busybox"
}

# arm64_apt: points the caller's APT_STATE and DEBS (declare them local first) at a
# private arm64 apt state under $T/arm64/apt/ (APT::Architecture=arm64, its own lists,
# cache and an empty dpkg status) reading the suites apt-suites.sh wrote, and updates its
# lists once: no `dpkg --add-architecture`, the system's lists stay amd64-only.
arm64_apt() {
  local S=$T/arm64/apt
  mkdir -p "$S/lists/partial" "$S/archives/partial" "$S/sourceparts" "$T/arm64/debs"
  : >>"$S/status"
  APT_STATE=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64
    -o Dir::State::Lists="$S/lists" -o Dir::Cache="$S" -o Dir::State::status="$S/status"
    -o Dir::Etc::sourcelist=/etc/apt/sources.list.d/cxl-guest-lab.sources
    -o Dir::Etc::sourceparts="$S/sourceparts" -o Acquire::Languages=none
    -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false)
  DEBS=$T/arm64/debs
  if [ ! -f "$S/.ready" ] || ! ls "$S/lists/"*_dists_trixie_main_binary-arm64_Packages* >/dev/null 2>&1; then
    log "apt-get update (private arm64 state in $S)"
    "${APT[@]}" "${APT_STATE[@]}" update >"$T/arm64/apt-update.log" 2>&1 ||
      { skip "arm64: apt-get update of the arm64 lists failed, see $T/arm64/apt-update.log"; return 1; }
    touch "$S/.ready"
  fi
}

# The arm64 guest of the ACPI test (docs/testing.md, "aarch64 guest"): QEMU for arm, its
# UEFI firmware, trixie's arm64 6.12 kernel and busybox-static, all under $T/arm64/.
# The arm64 packages come through arm64_apt.
get_arm64() {
  local A=$T/arm64
  mkdir -p "$A/debs"
  install_qemu qemu-system-aarch64 qemu-system-arm || return 1
  if [ ! -e "$A/QEMU_EFI.fd" ]; then
    local fw=/usr/share/qemu-efi-aarch64/QEMU_EFI.fd
    if [ ! -f "$fw" ]; then
      # Not installed: bookworm's package (arch all) extracted into the cache.
      setup_apt || { skip "arm64 guest (UEFI firmware): $apt_why"; return 1; }
      local deb
      deb=$(download bookworm qemu-efi-aarch64) || { skip "arm64 guest: apt-get download qemu-efi-aarch64 failed"; return 1; }
      rm -rf "$A/firmware" && mkdir -p "$A/firmware"
      dpkg-deb -x "$deb" "$A/firmware" || { skip "arm64 guest: cannot extract $deb"; return 1; }
      rm -f "$deb"
      fw=$A/firmware/usr/share/qemu-efi-aarch64/QEMU_EFI.fd
      [ -f "$fw" ] || { skip "arm64 guest: qemu-efi-aarch64 has no QEMU_EFI.fd"; return 1; }
    fi
    ln -sf "$fw" "$A/QEMU_EFI.fd"
  fi
  if [ -f "$A/kernel/vmlinuz" ] && [ -d "$A/kernel/modules" ] && [ -x "$A/busybox" ]; then return 0; fi
  setup_apt || { skip "arm64 guest: $apt_why"; return 1; }
  local APT_STATE DEBS
  arm64_apt || return 1
  if [ ! -f "$A/kernel/vmlinuz" ] || [ ! -d "$A/kernel/modules" ]; then
    local pkg
    pkg=$(apt-cache "${APT_STATE[@]}" search --names-only '^linux-image-6\.12\.[0-9]+\+deb13-arm64-unsigned$' 2>/dev/null |
      awk '{print $1}' | sort -V | tail -n1)
    [ -n "$pkg" ] || { skip "arm64 guest: no linux-image-6.12.*+deb13-arm64-unsigned in the arm64 lists"; return 1; }
    extract_kernel trixie arm64/kernel "$pkg" || return 1
  fi
  if [ ! -x "$A/busybox" ]; then
    extract_busybox trixie "$A/busybox" || return 1
  fi
  log "arm64 guest ready: $(cat "$A/kernel/package"), busybox, $(readlink "$A/QEMU_EFI.fd"), $("$T/bin/qemu-system-aarch64" --version | head -n1)"
}

# For scripts/guest/arm64-nested-probe.sh's L2 run (tool name arm64-nested, never by
# default): trixie's arm64 qemu-system-arm and its whole Depends closure, extracted into
# $T/arm64/l1-qemu/ as a root tree for the arm64 L1 (its loader through lib -> usr/lib).
get_arm64_nested() {
  local Q=$T/arm64/l1-qemu
  if [ -x "$Q/usr/bin/qemu-system-aarch64" ]; then return 0; fi
  setup_apt || { skip "arm64 L1 QEMU: $apt_why"; return 1; }
  local APT_STATE DEBS pkgs debs d
  arm64_apt || return 1
  pkgs=$(apt-cache "${APT_STATE[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances qemu-system-arm 2>/dev/null | grep -v '^[ <]' | sort -u)
  [ -n "$pkgs" ] || { skip "arm64 L1 QEMU: no qemu-system-arm in the arm64 lists"; return 1; }
  # shellcheck disable=SC2086 # one word per package
  debs=$(download trixie $pkgs) || { skip "arm64 L1 QEMU: apt-get download of qemu-system-arm and its dependencies failed"; return 1; }
  rm -rf "$Q" "$Q.tmp" && mkdir -p "$Q.tmp"
  for d in $debs; do
    dpkg-deb -x "$d" "$Q.tmp" || { skip "arm64 L1 QEMU: cannot extract $d"; return 1; }
  done
  rm -f $debs
  rm -rf "$Q.tmp/usr/share/doc" "$Q.tmp/usr/share/man" "$Q.tmp/usr/share/locale" "$Q.tmp/usr/bin/qemu-system-arm"
  ln -s usr/lib "$Q.tmp/lib"
  mv "$Q.tmp" "$Q"
  log "arm64 L1 QEMU ready: $(echo "$pkgs" | wc -w) packages in $Q"
}

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(acpica qemu kernel busybox)
for w in "${want[@]}"; do
  case "$w" in
    acpica) get_acpica ;;
    qemu) get_qemu ;;
    kernel) get_kernel ;;
    kernel73) get_kernel73 ;;
    busybox) get_busybox ;;
    arm64) get_arm64 ;;
    arm64-nested) get_arm64_nested ;;
    *) log "unknown tool $w" ;;
  esac
done
exit 0
