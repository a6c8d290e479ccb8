#!/usr/bin/env bash
# The test command from README.md: the whole workspace with every feature.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-features "$@"
