//! What the CLI prints when it fails: the error chain once, `error: a: b: c`, exit 1.
#![allow(clippy::unwrap_used)]

mod chain_common;
mod cli_common;
mod demo_common;
mod skip_support;

use cli_common::run;

use chain_common::assert_text_once;
use demo_common::kvm_or_skip;

const EIO: &str = "Input/output error (os error 5)";

/// The last line of stderr (the demo prints progress lines before the error).
fn error_line(err: &str) -> &str {
    err.lines().last().unwrap_or("")
}

#[test]
fn probe_prints_a_backend_failure_once() {
    for uapi in ["v2", "v3"] {
        let (code, out, err) = run(&[
            "probe",
            "--sim",
            "--uapi",
            uapi,
            "--sim-fault",
            "device-info",
        ]);
        assert_eq!(code, 1, "{err}");
        assert!(out.is_empty(), "{out}");
        assert_eq!(
            err,
            format!(
                "error: sim:{uapi}: probing the CXL device: VFIO_DEVICE_GET_INFO failed: {EIO}\n"
            )
        );
        assert_text_once(&err);
    }
    let (code, _, err) = run(&["probe", "--sim", "--sim-fault", "region-info"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("error: sim:v2: probing the CXL device: VFIO_DEVICE_GET_REGION_INFO"),
        "{err}"
    );
    assert_eq!(err.matches(EIO).count(), 1, "{err}");
    assert_text_once(&err);
    let (code, _, err) = run(&["probe", "--sim", "--sim-fault", "read"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.matches(EIO).count(), 1, "{err}");
    assert_text_once(&err);
}

#[test]
fn acpi_prints_a_backend_failure_once() {
    let dir = std::env::temp_dir().join(format!("cxl-cli-errors-{}", std::process::id()));
    let (code, _, err) = run(&[
        "acpi",
        "--sim",
        "--sim-fault",
        "device-info",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err,
        format!(
            "error: sim:v2 (device 0): probing the CXL device: VFIO_DEVICE_GET_INFO failed: {EIO}\n"
        )
    );
    assert!(!dir.exists(), "nothing is written on failure");
}

#[test]
fn opening_a_directory_says_why_once() {
    let dir = std::env::temp_dir();
    let (code, _, err) = run(&["probe", "--device", dir.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert_text_once(&err);
    assert!(
        err.to_lowercase().matches("is a directory").count() <= 1,
        "{err}"
    );
}

#[test]
fn demo_prints_a_probe_failure_once() {
    if !kvm_or_skip("demo_prints_a_probe_failure_once") {
        return;
    }
    let (code, _, err) = run(&["demo", "--sim-fault", "device-info"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        error_line(&err),
        format!("error: demo: dev0: probing the CXL device: VFIO_DEVICE_GET_INFO failed: {EIO}")
    );
    assert_text_once(error_line(&err));
}

/// Off x86-64 the demo refuses at once, saying what it needs (before any device, memory
/// check or KVM).
#[cfg(not(target_arch = "x86_64"))]
#[test]
fn demo_says_it_needs_an_x86_64_kvm_host() {
    for args in [&["demo"][..], &["demo", "--count", "2", "--json"]] {
        let (code, out, err) = run(args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(out.is_empty(), "{out}");
        assert_eq!(
            err,
            format!(
                "error: the demo needs an x86-64 KVM host (its guest is x86-64 code run in long \
                 mode); this build is for {}\n",
                std::env::consts::ARCH
            )
        );
    }
}
