#!/usr/bin/env bash
# Prints the skip summary of a test run: every line of the skip log (CXL_SKIP_LOG, one
# "SKIPPED <test>: <missing> (<how>)" line per skipped test) and the tools provisioning
# could not get (the "SKIP: guest-tools:" lines of fetch-tools.sh's output, if given).
# Usage: scripts/skip-summary.sh SKIP_LOG [PROVISION_LOG]
set -uo pipefail
log=${1:?usage: $0 SKIP_LOG [PROVISION_LOG]}
prov=${2:-}
printf '\n=== skipped tests ===\n'
if [ -s "$log" ]; then
  sort "$log" | uniq
  printf '%s test(s) skipped (CXL_REQUIRE_ALL=1 makes a skip of the native run fail; the [aarch64, qemu-user] ones are skips by design)\n' "$(sort "$log" | uniq | wc -l)"
elif [ -e "$log" ]; then
  echo "none"
else
  echo "no skip log at $log (the tests did not run?)"
fi
if [ -n "$prov" ] && [ -s "$prov" ]; then
  missing=$(grep -oE 'SKIP: guest-(tools|driver): .*[^* ]' "$prov" | sed -E 's/^SKIP: guest-(tools|driver): /  /')
  if [ -n "$missing" ]; then
    printf 'provisioning could not get:\n%s\n' "$missing"
  fi
fi
