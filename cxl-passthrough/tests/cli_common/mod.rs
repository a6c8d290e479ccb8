//! Runs the `cxl-passthrough` CLI as a user would (shared by the `cli_*` tests).
#![allow(dead_code, clippy::unwrap_used)]

use std::process::Command;

/// Runs the CLI with `args`: (exit code, or -1 when killed by a signal; stdout; stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cxl-passthrough"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
