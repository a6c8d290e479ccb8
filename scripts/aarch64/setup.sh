#!/usr/bin/env bash
# Provisions the aarch64 cross build and its qemu-user test run on an x86-64 Debian
# bookworm machine (root and apt; idempotent, cached under target/aarch64/):
#  - the standard library's source for `-Zbuild-std`: Debian's `rust-src` of the same
#    version as `rustc` (trixie-backports, arch all), extracted with dpkg-deb into
#    target/aarch64/rust-src/ (never installed: the toolchain directory is left alone;
#    cargo is pointed at it with __CARGO_TESTS_ONLY_SRC_ROOT, see scripts/aarch64/env.sh);
#  - the linker: bookworm's gcc-aarch64-linux-gnu and libc6-dev-arm64-cross;
#  - the runner: qemu-aarch64 from bookworm-backports' qemu-user (bookworm's 7.2 lacks
#    some of the syscalls the test harness uses);
#  - binfmt_misc: mounted if it is not, and qemu-aarch64 registered for aarch64 ELF
#    executables, so tests that spawn the CLI binary run it too.
# Prints "SKIP: aarch64: <what>" and exits non-zero when something cannot be had.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${CARGO_TARGET_DIR:-$PWD/target}
A=$target/aarch64
mkdir -p "$A/debs"
APT=(apt-get -q -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
export DEBIAN_FRONTEND=noninteractive

log() { printf 'aarch64-setup: %s\n' "$*" >&2; }
fail() {
  printf 'SKIP: aarch64: %s\n' "$*" >&2
  exit 1
}

[ "$(uname -m)" = x86_64 ] || fail "the cross setup is written for an x86-64 host, this is $(uname -m)"
# Only what is not there yet needs root and apt (a provisioned machine runs as anyone).
need_root() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
    fail "$1 needs root, apt-get and dpkg-deb"
}

# The Debian suites, pinned low so the system is never upgraded from them: the same
# sources file and pin as scripts/guest/fetch-tools.sh (scripts/apt-suites.sh).
setup_apt() {
  need_root "provisioning (apt)"
  bash scripts/apt-suites.sh || fail "cannot write the apt sources (scripts/apt-suites.sh)"
  if [ ! -f "$A/.apt-ready" ] || ! ls /var/lib/apt/lists/*_dists_trixie-backports_* >/dev/null 2>&1 ||
    ! ls /var/lib/apt/lists/*_dists_bookworm-backports_* >/dev/null 2>&1; then
    log "apt-get update"
    "${APT[@]}" update >"$A/apt-update.log" 2>&1 || fail "apt-get update failed, see $A/apt-update.log"
    touch "$A/.apt-ready"
  fi
}

# 1. rust-src of rustc's own version, extracted (not installed).
command -v rustc >/dev/null || fail "rustc not found (the rustup toolchain of this repository)"
rust_version=$(rustc --version | awk '{print $2}')
src_root=$A/rust-src/usr/lib/rustlib/src/rust
if [ -f "$src_root/library/Cargo.lock" ] && [ "$(cat "$A/rust-src/.version" 2>/dev/null)" = "$rust_version" ]; then
  log "rust-src $rust_version: cached in $src_root"
else
  setup_apt
  deb_version=$(apt-cache madison rust-src | awk -F'|' '{gsub(/ /, "", $2); print $2}' |
    grep -m1 -E "^${rust_version//./\\.}\+" || true)
  [ -n "$deb_version" ] || fail "no Debian rust-src for rustc $rust_version (apt-cache madison rust-src)"
  log "rust-src $deb_version (rustc $rust_version): apt-get download + dpkg-deb -x"
  (cd "$A/debs" && "${APT[@]}" download "rust-src=$deb_version" >/dev/null) ||
    fail "apt-get download rust-src=$deb_version failed"
  rm -rf "$A/rust-src"
  dpkg-deb -x "$A/debs/rust-src_${deb_version//:/%3a}_all.deb" "$A/rust-src" ||
    fail "cannot extract rust-src $deb_version"
  [ -f "$src_root/library/Cargo.lock" ] || fail "rust-src $deb_version has no $src_root/library/Cargo.lock"
  echo "$rust_version" >"$A/rust-src/.version"
fi

# 2. linker and 3. runner (installed: bookworm packages, no libc upgrade).
if command -v aarch64-linux-gnu-gcc >/dev/null && [ -d /usr/aarch64-linux-gnu/lib ]; then
  log "linker: $(command -v aarch64-linux-gnu-gcc)"
else
  setup_apt
  log "apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
  "${APT[@]}" install -y --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
    >"$A/apt-install-linker.log" 2>&1 || fail "cannot install the linker, see $A/apt-install-linker.log"
fi
if command -v qemu-aarch64 >/dev/null && qemu-aarch64 --version | grep -qE 'version ([89]|[1-9][0-9])\.'; then
  log "runner: $(qemu-aarch64 --version | head -1)"
else
  setup_apt
  log "apt-get install -t bookworm-backports qemu-user"
  "${APT[@]}" install -y --no-install-recommends -t bookworm-backports qemu-user \
    >"$A/apt-install-qemu.log" 2>&1 || fail "cannot install qemu-user, see $A/apt-install-qemu.log"
  log "runner: $(qemu-aarch64 --version | head -1)"
fi

# 4. binfmt_misc, so an aarch64 binary a test spawns runs through qemu-aarch64 (which
# reads QEMU_LD_PREFIX from the environment the test passes on).
bm=/proc/sys/fs/binfmt_misc
if [ ! -e "$bm/register" ]; then
  need_root "mounting binfmt_misc"
  log "mounting binfmt_misc on $bm"
  mount -t binfmt_misc binfmt_misc "$bm" || fail "cannot mount binfmt_misc (tests spawning the CLI would fail)"
fi
qemu=$(command -v qemu-aarch64)
if [ -e "$bm/qemu-aarch64" ]; then
  interp=$(sed -n 's/^interpreter //p' "$bm/qemu-aarch64")
  [ -x "$interp" ] || fail "binfmt qemu-aarch64 is registered with $interp, which is not there"
  log "binfmt: qemu-aarch64 registered ($interp)"
else
  # The aarch64 ELF header (magic and mask as in QEMU's scripts/qemu-binfmt-conf.sh).
  magic='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
  need_root "registering qemu-aarch64 with binfmt_misc"
  mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
  printf ':qemu-aarch64:M::%s:%s:%s:' "$magic" "$mask" "$qemu" >"$bm/register" ||
    fail "cannot register qemu-aarch64 with binfmt_misc"
  log "binfmt: registered qemu-aarch64 ($qemu)"
fi
log "ready"
