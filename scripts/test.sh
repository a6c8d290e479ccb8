#!/usr/bin/env bash
# README's test command. Two steps:
#  1. provisioning: scripts/guest/fetch-tools.sh caches the optional test tools (ACPICA,
#     QEMU, Debian guest kernels, busybox, the arm64 guest) under target/guest-tools/
#     (CXL_GUEST_TOOLS overrides it). It needs root and apt; a tool it cannot get is
#     reported and the run goes on (the tests needing it then skip loudly). With
#     CXL_E2E_CLOUD_HYPERVISOR set, also the 7.3 guest kernel and our guest driver
#     (scripts/guest/build-guest-driver.sh).
#     CXL_NO_PROVISION=1 leaves it out.
#  2. cargo test --workspace --all-features (extra arguments go to cargo test).
# Every skipped test appends one "SKIPPED <test>: <missing> (<how>)" line to
# $CXL_SKIP_LOG (default target/test-skips.log); the summary of that file is printed
# at the end. CXL_REQUIRE_ALL=1 turns every skip into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$PWD/target}
mkdir -p "$target"
export CXL_SKIP_LOG=${CXL_SKIP_LOG:-$target/test-skips.log}
: >"$CXL_SKIP_LOG"
provision_log=$target/provision.log

if [ "${CXL_NO_PROVISION:-}" = 1 ]; then
  echo "provisioning: left out (CXL_NO_PROVISION=1)" | tee "$provision_log" >&2
else
  # arm64: the arm64 guest of acpi_linux_guest_arm64 (≈ 10 s to fetch, ≈ 5 s to boot).
  tools=(acpica qemu kernel busybox arm64)
  # The 7.3 guest kernel only serves the nested end-to-end test, which needs a patched
  # cloud-hypervisor anyway.
  [ -z "${CXL_E2E_CLOUD_HYPERVISOR:-}" ] || tools+=(kernel73)
  echo "provisioning: scripts/guest/fetch-tools.sh ${tools[*]}" >&2
  started=$SECONDS
  # Never fails the run: what could not be had is reported, and its tests skip.
  if ! bash scripts/guest/fetch-tools.sh "${tools[@]}" 2>&1 | tee "$provision_log" >&2; then
    echo "provisioning: fetch-tools.sh failed (see $provision_log); tests needing its tools will skip" >&2
  fi
  # Our guest Type-2 driver for the 7.3 cases of the nested test (a trixie chroot with the
  # 7.3.4 headers, ~4 min the first time; cached).
  if [ -n "${CXL_E2E_CLOUD_HYPERVISOR:-}" ]; then
    echo "provisioning: scripts/guest/build-guest-driver.sh" >&2
    bash scripts/guest/build-guest-driver.sh 2>&1 | tee -a "$provision_log" >&2 || true
  fi
  echo "provisioning: done in $((SECONDS - started)) s" >&2
fi

rc=0
cargo test --workspace --all-features "$@" || rc=$?
bash scripts/skip-summary.sh "$CXL_SKIP_LOG" "$provision_log"
exit "$rc"
