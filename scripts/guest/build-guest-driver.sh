#!/usr/bin/env bash
# Builds our guest test driver (tests/guest-driver/, GPL-2.0-only) for the Debian 7.3.4
# guest kernel, in a Debian trixie chroot made by debootstrap (trixie's gcc-14 needs
# trixie's libc, so it cannot build on the host). Provisioning, like fetch-tools.sh:
# run it from scripts/test.sh or by hand as root, never from a test.
#
#   $T/trixie-chroot/            debootstrap --variant=minbase trixie + trixie-backports'
#                                linux-headers-7.3.4+deb13-amd64, gcc-14, make, kmod
#   $T/guest-driver/cxl_t2_test.ko   the module (rebuilt when its source changes)
#
# T = CXL_GUEST_TOOLS or target/guest-tools. Idempotent, no stdin. Prints one "SKIP:"
# line and exits 0 when something cannot be had (the nested test then skips its driver
# checks loudly).
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
T=${CXL_GUEST_TOOLS:-$repo/target/guest-tools}
HEADERS=linux-headers-7.3.4+deb13-amd64
src=$repo/tests/guest-driver
root=$T/trixie-chroot
out=$T/guest-driver
mkdir -p "$T" "$out"
exec 9>"$T/.guest-driver.lock"
flock 9

log() { printf 'guest-driver: %s\n' "$*" >&2; }
skip() {
  printf '\n*** SKIP: guest-driver: %s ***\n\n' "$*" >&2
  exit 0
}

stamp=$(cat "$src/cxl_t2_test.c" "$src/Kbuild" | sha256sum | cut -c1-16)
if [ -s "$out/cxl_t2_test.ko" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
  log "up to date: $out/cxl_t2_test.ko"
  exit 0
fi
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap and chroot)"
export DEBIAN_FRONTEND=noninteractive
if ! command -v debootstrap >/dev/null; then
  log "installing debootstrap"
  apt-get -q -o DPkg::Lock::Timeout=600 install -y debootstrap >"$T/debootstrap-install.log" 2>&1 ||
    skip "cannot install debootstrap (see $T/debootstrap-install.log)"
fi

if [ ! -e "$root/.ready" ]; then
  rm -rf "$root"
  log "debootstrap trixie into $root (~2 min)"
  debootstrap --variant=minbase trixie "$root" http://deb.debian.org/debian >"$T/debootstrap.log" 2>&1 ||
    skip "debootstrap trixie failed (see $T/debootstrap.log)"
  echo "deb http://deb.debian.org/debian trixie-backports main" >"$root/etc/apt/sources.list.d/backports.list"
  touch "$root/.ready"
fi

mounted=""
cleanup() { [ -n "$mounted" ] && umount "$root/proc" 2>/dev/null; }
trap cleanup EXIT
# objtool fails ("read_stack_limit: fopen failed") without /proc in the chroot.
if ! mountpoint -q "$root/proc"; then
  mount -t proc proc "$root/proc" || skip "cannot mount /proc in the chroot"
  mounted=1
fi

if [ ! -d "$root/usr/src/$HEADERS" ]; then
  log "installing $HEADERS, gcc-14, make, kmod in the chroot (~2 min)"
  chroot "$root" sh -c "apt-get -q update && apt-get -q install -y --no-install-recommends -t trixie-backports \
    $HEADERS gcc-14 make kmod" >"$T/chroot-packages.log" 2>&1 ||
    skip "cannot install $HEADERS in the chroot (see $T/chroot-packages.log)"
fi

rm -rf "$root/build" && mkdir -p "$root/build"
cp "$src/cxl_t2_test.c" "$src/Kbuild" "$root/build/"
log "building cxl_t2_test.ko against $HEADERS"
chroot "$root" make -C "/usr/src/$HEADERS" M=/build modules >"$T/guest-driver.log" 2>&1 ||
  skip "module build failed (see $T/guest-driver.log)"
cp "$root/build/cxl_t2_test.ko" "$out/cxl_t2_test.ko"
echo "$stamp" >"$out/stamp"
log "built $out/cxl_t2_test.ko"
