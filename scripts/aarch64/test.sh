#!/usr/bin/env bash
# The aarch64 run (.ci/run calls it after README's test command; docs/testing.md,
# "aarch64"): provisions with scripts/aarch64/setup.sh, then, with std built from source
# (-Zbuild-std) into target/aarch64/cargo/:
#  1. cargo clippy --workspace --all-targets --all-features -D warnings for
#     aarch64-unknown-linux-gnu, and for the library without default features;
#  2. cargo test --workspace --all-features for aarch64, every test binary run under
#     qemu-aarch64 (extra arguments go to cargo test).
# Tests that cannot run there (the x86-64 KVM demo, the x86-64 guest tools) skip loudly.
# The skip lines go to target/aarch64/test-skips.log and, tagged "[aarch64, qemu-user]",
# are appended to $CXL_SKIP_LOG when it is set (.ci/run prints it as the skip summary);
# run by hand, the script prints its own summary. When setup.sh cannot provision, the
# whole run is one loud skip (a failure under CXL_REQUIRE_ALL=1). The skips by
# architecture are the design of this run, so CXL_REQUIRE_ALL does not apply to the tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${CARGO_TARGET_DIR:-$PWD/target}
A=$target/aarch64
mkdir -p "$A"
outer_log=${CXL_SKIP_LOG:-}
log=$A/test-skips.log
: >"$log"
TARGET=aarch64-unknown-linux-gnu

# Appends this run's skip lines, tagged, to the caller's skip log, or prints a summary.
report_skips() {
  if [ -n "$outer_log" ]; then
    sed -E 's/^SKIPPED ([^:]*):/SKIPPED \1 [aarch64, qemu-user]:/' "$log" >>"$outer_log"
  else
    bash scripts/skip-summary.sh "$log"
  fi
}

started=$SECONDS
step() { printf '\n--- aarch64: %s (%ss)\n' "$*" "$((SECONDS - started))"; }

step "provisioning: scripts/aarch64/setup.sh"
if ! setup_out=$(bash scripts/aarch64/setup.sh 2>&1); then
  printf '%s\n' "$setup_out" >&2
  why=$(printf '%s\n' "$setup_out" | sed -n 's/^SKIP: aarch64: //p' | tail -1)
  line="SKIPPED aarch64 build and tests: ${why:-scripts/aarch64/setup.sh failed} (as root on an x86-64 Debian host with apt: bash scripts/aarch64/setup.sh)"
  if [ "${CXL_REQUIRE_ALL:-0}" != 0 ] && [ -n "${CXL_REQUIRE_ALL:-}" ]; then
    echo "$line [CXL_REQUIRE_ALL is set: a skip is a failure]" >&2
    exit 1
  fi
  echo "$line" >&2
  echo "$line" >"$log"
  if [ -n "$outer_log" ]; then
    echo "$line" >>"$outer_log"
  else
    bash scripts/skip-summary.sh "$log"
  fi
  exit 0
fi
printf '%s\n' "$setup_out" >&2

# shellcheck source=scripts/aarch64/env.sh
. scripts/aarch64/env.sh
unset CXL_REQUIRE_ALL
BUILD=(-Zbuild-std --target "$TARGET")

step "clippy --workspace --all-targets --all-features"
cargo clippy "${BUILD[@]}" --workspace --all-targets --all-features -- -D warnings
step "clippy -p cxl-passthrough --no-default-features"
cargo clippy "${BUILD[@]}" -p cxl-passthrough --no-default-features -- -D warnings

step "build the tests"
cargo test "${BUILD[@]}" --workspace --all-features --no-run

step "tests under $(qemu-aarch64 --version | head -1)"
out=$A/test-output.log
rc=0
# pipefail: cargo's status, not tee's.
CXL_SKIP_LOG=$log cargo test "${BUILD[@]}" --workspace --all-features "$@" 2>&1 | tee "$out" || rc=$?
report_skips
sum() { grep -E '^test result:' "$out" | grep -oE "[0-9]+ $1" | awk '{s += $1} END {print s + 0}'; }
skipped=$(sort -u "$log" | grep -c '^SKIPPED' || true)
step "done: $(sum passed) passed, $(sum failed) failed, $(sum ignored) ignored; $skipped skipped loudly (in $(grep -c '^test result:' "$out") test binaries); cargo test exit $rc"
exit "$rc"
