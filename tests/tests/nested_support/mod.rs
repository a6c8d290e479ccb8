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
    Arch::X86_64.missing_guest_tools()
}

/// The architecture of a nested run's L1 and L2 (`run-nested.sh --arch`): x86_64 (QEMU
/// TCG with nested SVM) or arm64 (`qemu-system-aarch64 -M virt,virtualization=on`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// x86_64 L1 and L2, the patched cloud-hypervisor in [`ENV`].
    X86_64,
    /// arm64 L1 and L2, the aarch64 cloud-hypervisor in `CXL_E2E_CLOUD_HYPERVISOR_AARCH64`.
    Arm64,
}

impl Arch {
    /// `run-nested.sh --arch` value.
    pub fn flag(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }

    /// The variable naming the cloud-hypervisor binary for this architecture.
    pub fn env(self) -> &'static str {
        match self {
            Self::X86_64 => ENV,
            Self::Arm64 => "CXL_E2E_CLOUD_HYPERVISOR_AARCH64",
        }
    }

    /// fetch-tools.sh's names of the tools the run needs.
    pub fn tools(self) -> &'static str {
        match self {
            Self::X86_64 => TOOLS,
            Self::Arm64 => "arm64",
        }
    }

    /// The guest tools the run needs that are missing (the cache, then QEMU on `PATH`).
    pub fn missing_guest_tools(self) -> Vec<String> {
        let (files, qemu): (&[&str], _) = match self {
            Self::X86_64 => (
                &["kernel/vmlinuz", "kernel-7.3/vmlinuz", "busybox"],
                "qemu-system-x86_64",
            ),
            Self::Arm64 => (
                &["arm64/kernel/vmlinuz", "arm64/busybox", "arm64/QEMU_EFI.fd"],
                "qemu-system-aarch64",
            ),
        };
        let mut m = missing_tools(files);
        if Command::new(qemu).arg("--version").output().is_err() {
            m.push(qemu.into());
        }
        m
    }
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

/// Runs the nested script for `arch` once for every case (kernel "6.12" or "7.3", 1 or 2
/// simulated CXL devices, the first one's revision), using `ch` as the patched
/// cloud-hypervisor; the work files go to `work`. QEMU is killed after `hard_timeout`
/// (unless `CXL_E2E_QEMU_TIMEOUT` says otherwise), one cloud-hypervisor run after a third
/// of it (unless `CXL_E2E_CH_TIMEOUT` does): limits for a hang, not a time budget.
pub fn run_nested(
    arch: Arch,
    ch: &Path,
    cases: &[case::Case],
    work: &Path,
    hard_timeout: Duration,
) -> Run {
    let secs = |var: &str, d: Duration| std::env::var(var).unwrap_or(d.as_secs().to_string());
    let qemu_timeout = secs("CXL_E2E_QEMU_TIMEOUT", hard_timeout);
    let runs: Vec<String> = cases.iter().map(case::Case::run).collect();
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/guest/nested/run-nested.sh"))
        .args(["--arch", arch.flag(), "--runs", &runs.join(",")])
        .arg("--work")
        .arg(work)
        .env(arch.env(), ch)
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
