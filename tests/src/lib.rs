//! Shared helpers for the cross-crate integration tests.

use std::path::{Path, PathBuf};

/// Repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The guest-tool cache (same default as scripts/guest/fetch-tools.sh; `CXL_GUEST_TOOLS`
/// overrides it).
pub fn tools_dir() -> PathBuf {
    std::env::var_os("CXL_GUEST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/guest-tools"))
}
