//! The skip helper as a user meets it: a skipping test passes with one `SKIPPED` line on
//! stderr and in the `CXL_SKIP_LOG` file, and fails with that line under
//! `CXL_REQUIRE_ALL=1`. Each case runs this test binary again (only the `child` test, which
//! skips only when `CHILD` is set).

use std::path::Path;
use std::process::{Command, Output};

use cxl_integration_tests::skip;
use cxl_integration_tests::skip::{REQUIRE_ALL_ENV, SKIP_LOG_ENV};

const CHILD: &str = "CXL_SKIP_HELPER_CHILD";
const LINE: &str = "SKIPPED skip_child: the frobnicator not found (apt-get install frobnicator)";

#[test]
fn child() {
    if std::env::var_os(CHILD).is_some() {
        skip(
            "skip_child",
            "the frobnicator\n not found",
            "apt-get install frobnicator",
        );
    }
}

fn run_child(log: &Path, require_all: Option<&str>) -> (Output, String) {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["--exact", "child", "--test-threads=1"])
        .env(CHILD, "1")
        .env(SKIP_LOG_ENV, log)
        .env_remove(REQUIRE_ALL_ENV);
    if let Some(v) = require_all {
        cmd.env(REQUIRE_ALL_ENV, v);
    }
    let out = cmd.output().expect("run the test binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

#[test]
fn a_skip_passes_and_is_logged_once() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skip_helper_log");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("skips.log");
    for require_all in [None, Some("0"), Some("")] {
        let (out, text) = run_child(&log, require_all);
        assert!(out.status.success(), "{require_all:?}: {text}");
        // Not captured by the harness: visible without --nocapture.
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .any(|l| l == LINE),
            "{text}"
        );
    }
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(logged, format!("{LINE}\n{LINE}\n{LINE}\n"));
}

#[test]
fn require_all_turns_a_skip_into_a_failure() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skip_helper_require");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("skips.log");
    let (out, text) = run_child(&log, Some("1"));
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(LINE),
        "the failure names what is missing: {text}"
    );
    assert!(text.contains("CXL_REQUIRE_ALL is set"), "{text}");
    assert!(!log.exists(), "a failure is not a skip");
}
