//! Helpers of the nested end-to-end test (`nested_e2e.rs`): running
//! `scripts/guest/nested/run-nested.sh`, parsing its `@@key=value` console and evaluating
//! the assertions.

#![allow(dead_code)] // not every helper is used by every test binary

pub mod case;
pub mod checks;
pub mod console;
pub mod region;

pub use cxl_integration_tests::{missing_tools, provision_hint, repo_root, skip, tools_dir};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The variable naming the patched cloud-hypervisor binary (built with `cxl-sim`).
pub const ENV: &str = "CXL_E2E_CLOUD_HYPERVISOR";

/// fetch-tools.sh's names of the tools the nested run needs.
pub const TOOLS: &str = "qemu kernel kernel73 busybox";

/// The guest tools the nested run needs that are not in the cache (tests never fetch
/// them: `bash scripts/test.sh` does when `CXL_E2E_CLOUD_HYPERVISOR` is set).
pub fn missing_guest_tools() -> Vec<String> {
    let mut m = missing_tools(&["kernel/vmlinuz", "kernel-7.3/vmlinuz", "busybox"]);
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        m.push("qemu-system-x86_64".into());
    }
    m
}

/// How one nested run ended.
#[derive(Debug)]
pub enum Run {
    /// The script printed a `SKIP:` line (a tool is missing): the rest of that line.
    Skipped(String),
    /// The console (stdout + stderr) and how the script exited.
    Done {
        /// Exit status 0.
        ok: bool,
        /// The QEMU run hit its timeout (`timeout` exit status 124): something hung.
        timed_out: bool,
        /// That timeout in seconds (`CXL_E2E_QEMU_TIMEOUT`, default the hard timeout).
        qemu_timeout: String,
        /// Everything printed.
        console: String,
    },
}

/// Runs the nested script once for every case (kernel "6.12" or "7.3", 1 or 2 simulated
/// CXL devices, the first one's revision), using `ch` as the patched cloud-hypervisor; the
/// work files go to `work`. QEMU is killed after `hard_timeout` (unless
/// `CXL_E2E_QEMU_TIMEOUT` says otherwise), one cloud-hypervisor run after a third of it
/// (unless `CXL_E2E_CH_TIMEOUT` does): limits for a hang, not a time budget.
pub fn run_nested(ch: &Path, cases: &[case::Case], work: &Path, hard_timeout: Duration) -> Run {
    let secs = |var: &str, d: Duration| std::env::var(var).unwrap_or(d.as_secs().to_string());
    let qemu_timeout = secs("CXL_E2E_QEMU_TIMEOUT", hard_timeout);
    let runs: Vec<String> = cases.iter().map(case::Case::run).collect();
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/guest/nested/run-nested.sh"))
        .args(["--runs", &runs.join(",")])
        .arg("--work")
        .arg(work)
        .env(ENV, ch)
        .env("CXL_GUEST_TOOLS", tools_dir())
        .env("CXL_E2E_QEMU_TIMEOUT", &qemu_timeout)
        .env(
            "CXL_E2E_CH_TIMEOUT",
            secs("CXL_E2E_CH_TIMEOUT", hard_timeout / 3),
        )
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => return Run::Skipped(format!("cannot run bash: {e}")),
    };
    let mut console = String::from_utf8_lossy(&out.stdout).into_owned();
    console.push_str(&String::from_utf8_lossy(&out.stderr));
    if let Some(l) = console.lines().find_map(|l| l.strip_prefix("SKIP:")) {
        return Run::Skipped(l.trim().to_string());
    }
    Run::Done {
        ok: out.status.success(),
        timed_out: out.status.code() == Some(124),
        qemu_timeout,
        console,
    }
}
