//! Shared helpers for the cross-crate integration tests.

use std::path::{Path, PathBuf};

/// Loud skips: one `SKIPPED <test>: <missing> (<how>)` line on stderr and in the
/// `CXL_SKIP_LOG` file, or a failure under `CXL_REQUIRE_ALL=1` (docs/testing.md, "Skips").
/// The same file serves cxl-passthrough's own tests.
#[path = "../../cxl-passthrough/tests/skip_support/mod.rs"]
pub mod skip;

pub use skip::skip;

/// Repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The guest-tool cache (same default as scripts/guest/fetch-tools.sh; `CXL_GUEST_TOOLS`
/// overrides it). Tests only look in it: `bash scripts/test.sh` fills it before running
/// them (tests never install anything).
pub fn tools_dir() -> PathBuf {
    std::env::var_os("CXL_GUEST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/guest-tools"))
}

/// How to get guest tools, for skip messages: `tools` are fetch-tools.sh's names.
pub fn provision_hint(tools: &str) -> String {
    format!(
        "bash scripts/test.sh provisions them, or as root: scripts/guest/fetch-tools.sh {tools}"
    )
}

/// Why the guest tools cannot serve this build's tests: `None` on x86-64; on any other
/// architecture (an aarch64 build run under qemu-user, docs/testing.md "aarch64") the
/// reason, since scripts/guest/fetch-tools.sh provisions x86-64 builds (ACPICA, QEMU for
/// x86-64 guests, amd64 kernels) and those tests belong to the x86-64 run.
pub fn guest_tools_unusable() -> Option<String> {
    if cfg!(target_arch = "x86_64") {
        None
    } else {
        Some(format!(
            "the guest tools (ACPICA, QEMU, Debian kernels) are x86-64 builds that the x86-64 \
             test run uses; this build is for {}",
            std::env::consts::ARCH
        ))
    }
}

/// How to run the tests that need the guest tools, for skips by [`guest_tools_unusable`].
pub const GUEST_TOOLS_HOST: &str = "run them on an x86-64 host: bash scripts/test.sh";

/// The files under [`tools_dir`] among `needed` that are missing (empty: all present).
pub fn missing_tools(needed: &[&str]) -> Vec<String> {
    let dir = tools_dir();
    needed
        .iter()
        .filter(|f| !dir.join(f).exists())
        .map(|f| dir.join(f).display().to_string())
        .collect()
}
