//! Helpers of the nested end-to-end test (`nested_e2e.rs`): running
//! `scripts/guest/nested/run-nested.sh`, parsing its `@@key=value` console and evaluating
//! the assertions.

#![allow(dead_code)] // not every helper is used by every test binary

pub mod checks;
pub mod console;
pub mod region;

pub use cxl_integration_tests::{repo_root, tools_dir};
use std::path::Path;
use std::process::Command;

/// The variable naming the patched cloud-hypervisor binary (built with `cxl-sim`).
pub const ENV: &str = "CXL_E2E_CLOUD_HYPERVISOR";

/// Fetches the tools the nested run needs (idempotent; prints SKIP lines itself) and
/// tells which are still missing.
pub fn ensure_tools() -> Vec<String> {
    let dir = tools_dir();
    let needed = ["kernel/vmlinuz", "kernel-7.3/vmlinuz", "busybox"];
    let missing = |d: &Path| -> Vec<String> {
        needed
            .iter()
            .filter(|f| !d.join(f).exists())
            .map(|f| f.to_string())
            .collect()
    };
    if !missing(&dir).is_empty() {
        let status = Command::new("bash")
            .arg(repo_root().join("scripts/guest/fetch-tools.sh"))
            .args(["qemu", "kernel", "kernel73", "busybox"])
            .status();
        if let Err(e) = status {
            eprintln!("cannot run fetch-tools.sh: {e}");
        }
    }
    let mut m = missing(&dir);
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
    /// The script printed a `SKIP:` line (a tool is missing).
    Skipped(String),
    /// The console (stdout + stderr) and whether the script exited 0.
    Done {
        /// Exit status 0.
        ok: bool,
        /// Everything printed.
        console: String,
    },
}

/// Runs the nested script once for every case `(kernel, devices)` (kernel "6.12" or
/// "7.3", 1 or 2 simulated CXL devices), using `ch` as the patched cloud-hypervisor; the
/// work files go to `work`.
pub fn run_nested(ch: &Path, cases: &[(String, usize)], work: &Path) -> Run {
    let runs: Vec<String> = cases.iter().map(|(k, n)| format!("{k}:{n}")).collect();
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/guest/nested/run-nested.sh"))
        .args(["--runs", &runs.join(",")])
        .arg("--work")
        .arg(work)
        .env(ENV, ch)
        .env("CXL_GUEST_TOOLS", tools_dir())
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => return Run::Skipped(format!("cannot run bash: {e}")),
    };
    let mut console = String::from_utf8_lossy(&out.stdout).into_owned();
    console.push_str(&String::from_utf8_lossy(&out.stderr));
    if let Some(l) = console.lines().find(|l| l.starts_with("SKIP:")) {
        return Run::Skipped(l.to_string());
    }
    Run::Done {
        ok: out.status.success(),
        console,
    }
}
