# shellcheck shell=bash
# Sourced by scripts/aarch64/test.sh (and by hand: `. scripts/aarch64/env.sh`): the
# environment of the aarch64 cross build and its qemu-user runs, after
# scripts/aarch64/setup.sh. Then e.g.
#   cargo build -Zbuild-std --target aarch64-unknown-linux-gnu --workspace
#   cargo clippy -Zbuild-std --target aarch64-unknown-linux-gnu --workspace --all-targets --all-features -- -D warnings
_cxl_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
_cxl_target=${CARGO_TARGET_DIR:-$_cxl_root/target}
# -Zbuild-std on the stable toolchain.
export RUSTC_BOOTSTRAP=1
# The std source setup.sh extracted from Debian's rust-src (the toolchain directory has
# none and is left untouched): cargo's override of <sysroot>/lib/rustlib/src/rust/library.
export __CARGO_TESTS_ONLY_SRC_ROOT=$_cxl_target/aarch64/rust-src/usr/lib/rustlib/src/rust/library
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
# `cargo test`/`cargo run` run the test binaries under qemu-user; binaries the tests spawn
# go through binfmt_misc (registered by setup.sh) and find the aarch64 libc the same way.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64
export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
# Its own target directory: the native build's host artifacts are not rebuilt under a
# different environment (RUSTC_BOOTSTRAP) and the two never contend for one lock.
export CARGO_TARGET_DIR=$_cxl_target/aarch64/cargo
unset _cxl_root _cxl_target
