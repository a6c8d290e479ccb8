//! The one way a test skips (docs/testing.md, "Skips"): one `SKIPPED <test>: <what is
//! missing> (<how to get it>)` line on the process's stderr (written directly, so the
//! test harness does not capture it), the same line appended to the file named by
//! `CXL_SKIP_LOG` (scripts/test.sh and .ci/run print that file as the skip summary), and a
//! panic with the same text instead when `CXL_REQUIRE_ALL=1` (a run that must prove
//! everything).
//!
//! This file is also the tests crate's helper (`tests/src/lib.rs` includes it), so both
//! crates skip the same way.

#![allow(dead_code)] // each test binary uses a subset

use std::io::Write as _;

/// Names the file every skip line is appended to (unset: stderr only).
pub const SKIP_LOG_ENV: &str = "CXL_SKIP_LOG";

/// When set to anything but empty or `0`, every skip fails its test instead.
pub const REQUIRE_ALL_ENV: &str = "CXL_REQUIRE_ALL";

/// The line a skip prints: `SKIPPED <test>: <missing> (<how>)`.
pub fn skip_line(test: &str, missing: &str, how: &str) -> String {
    let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("SKIPPED {test}: {} ({})", one_line(missing), one_line(how))
}

/// Whether `CXL_REQUIRE_ALL` turns skips into failures.
pub fn require_all() -> bool {
    std::env::var(REQUIRE_ALL_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Records that `test` cannot run because `missing` is absent (`how`: how to get it), and
/// returns so the caller can return; panics with the same line under `CXL_REQUIRE_ALL=1`.
pub fn skip(test: &str, missing: &str, how: &str) {
    let line = skip_line(test, missing, how);
    if require_all() {
        panic!("{line} [{REQUIRE_ALL_ENV} is set: a skip is a failure]");
    }
    // On a line of its own even when the harness has printed "test <name> ... " already.
    let _ = write!(std::io::stderr(), "\n{line}\n");
    if let Some(path) = std::env::var_os(SKIP_LOG_ENV).filter(|p| !p.is_empty()) {
        // One write of one line in append mode: concurrent test binaries do not interleave.
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = written {
            let _ = writeln!(
                std::io::stderr(),
                "cannot append to {SKIP_LOG_ENV}={}: {e}",
                std::path::Path::new(&path).display()
            );
        }
    }
}
