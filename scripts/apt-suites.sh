#!/usr/bin/env bash
# Writes the Debian suites the provisioning scripts download from (bookworm-backports,
# trixie, trixie-backports), each pinned at priority 100 so the system is never
# upgraded from them (trixie's libc in particular). Idempotent: each file is (re)written
# only when it is missing or predates trixie-backports. Needs root; the caller runs
# `apt-get update` afterwards. Used by scripts/guest/fetch-tools.sh and
# scripts/aarch64/setup.sh.
set -euo pipefail
src=/etc/apt/sources.list.d/cxl-guest-lab.sources
pin=/etc/apt/preferences.d/cxl-guest-lab
if ! grep -q '^Suites:.*trixie-backports' "$src" 2>/dev/null; then
  echo "apt-suites: writing $src" >&2
  cat >"$src" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports trixie trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
if ! grep -q 'n=trixie-backports' "$pin" 2>/dev/null; then
  echo "apt-suites: writing $pin" >&2
  cat >"$pin" <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 100

Package: *
Pin: release n=trixie-backports
Pin-Priority: 100

Package: *
Pin: release n=bookworm-backports
Pin-Priority: 100
PIN
fi
