//! Command-line inputs the CLI refuses or explains: device paths that are not VFIO
//! devices, out-of-range counts and sizes, window bases, hexadecimal bus numbers, and a
//! demo too large for the host's memory.
//!
//! Every refused demo command is built so that even a CLI without the check fails fast
//! without touching much memory (a 1 TiB device gets no window in the demo's 64 GiB
//! range; 0-sized devices are refused by the simulator), so this file never sets off
//! the OOM killer.
#![allow(clippy::unwrap_used)]

mod chain_common;
mod cli_common;
mod skip_support;

use cli_common::run;
use std::path::PathBuf;

use chain_common::assert_text_once;

fn temp(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("cxl-cli-inputs-{}-{tag}", std::process::id()))
}

/// Asserts a clap usage error (exit 2) naming `arg` and containing `why`.
fn usage_error(args: &[&str], arg: &str, why: &str) {
    let (code, out, err) = run(args);
    assert_eq!(code, 2, "{args:?}: {err}");
    assert!(out.is_empty(), "{args:?}: {out}");
    assert!(err.contains(arg) && err.contains(why), "{args:?}: {err}");
}

#[test]
fn demo_and_acpi_counts_are_bounded_alike() {
    for cmd in ["demo", "acpi"] {
        // `--dpa-size 0`: without the bound, the simulator refuses the devices at once.
        for count in ["0", "17", "1000"] {
            usage_error(
                &[
                    cmd,
                    "--count",
                    count,
                    "--dpa-size",
                    "0",
                    "--out",
                    "/nonexistent",
                ],
                "--count",
                "1..=16",
            );
        }
    }
}

#[test]
fn a_demo_larger_than_the_available_memory_is_refused_before_allocating() {
    // Off x86-64 the demo refuses before its memory check (cli_errors.rs).
    if !cfg!(target_arch = "x86_64") {
        skip_support::skip(
            "a_demo_larger_than_the_available_memory_is_refused_before_allocating",
            &format!(
                "the demo needs an x86-64 KVM host; this build is for {}",
                std::env::consts::ARCH
            ),
            "run on an x86-64 host",
        );
        return;
    }
    let (code, out, err) = run(&["demo", "--count", "16", "--dpa-size", "1T"]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.starts_with(
            "error: the demo needs 16.0 TiB of memory (16 x 1.0 TiB of simulated device memory, \
             32.0 MiB of guest RAM) but the host has "
        ),
        "{err}"
    );
    assert!(
        err.contains("available (MemAvailable in /proc/meminfo)"),
        "{err}"
    );
    assert!(
        err.contains("use a smaller --count, --dpa-size or --bandwidth-mib"),
        "{err}"
    );
    // Refused before KVM, the devices or the guest: no progress line.
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn demo_numbers_are_checked_at_parse_time() {
    for mib in ["0", "1025", "17592186044416"] {
        usage_error(
            &["demo", "--bandwidth-mib", mib],
            "--bandwidth-mib",
            "1..=1024",
        );
    }
    usage_error(&["demo", "--passes", "0"], "--passes", "0 is not in 1..");
}

fn not_a_vfio_device(err: &str, path: &str, what: &str) {
    assert!(
        err.contains(&format!("{path} is not a VFIO device (it is {what}")),
        "{err}"
    );
    assert!(err.contains("/dev/vfio/devices/vfioN"), "{err}");
    assert!(
        err.contains("> /sys/bus/pci/drivers/vfio-pci/bind"),
        "{err}"
    );
    assert!(err.contains("driver_override"), "{err}");
    assert!(!err.contains("/dev/iommu"), "{err}");
    assert_text_once(err);
}

#[test]
fn a_device_path_that_is_not_a_vfio_device_is_explained() {
    let (code, _, err) = run(&["probe", "--device", "/dev/null"]);
    assert_eq!(code, 1, "{err}");
    not_a_vfio_device(&err, "/dev/null", "a character device 1:3 ");

    let file = temp("file");
    std::fs::write(&file, b"").unwrap();
    let f = file.to_str().unwrap();
    let (code, _, err) = run(&["probe", "--device", f]);
    std::fs::remove_file(&file).unwrap();
    assert_eq!(code, 1, "{err}");
    not_a_vfio_device(&err, f, "a regular file");

    let dir = std::env::temp_dir();
    let d = dir.to_str().unwrap();
    let mut cmds = vec![
        vec!["probe", "--device", d],
        vec!["acpi", "--device", d, "--out", "/nonexistent"],
    ];
    // Off x86-64 the demo refuses before opening its device (cli_errors.rs).
    if cfg!(target_arch = "x86_64") {
        cmds.push(vec!["demo", "--device", d]);
    }
    for cmd in cmds {
        let (code, _, err) = run(&cmd);
        assert_eq!(code, 1, "{cmd:?}: {err}");
        not_a_vfio_device(&err, d, "a directory");
        assert_eq!(err.matches("directory").count(), 1, "{err}");
    }
}

#[test]
fn window_bases_below_4_gib_or_unaligned_are_refused() {
    for cmd in [&["probe"][..], &["acpi", "--out", "/nonexistent"]] {
        for base in ["0", "0x10000000", "4095M"] {
            let args = [cmd, &["--window-base", base]].concat();
            usage_error(&args, "--window-base", "is below 4 GiB");
        }
        let args = [cmd, &["--window-base", "0x4008000000"]].concat();
        usage_error(&args, "--window-base", "is not 256 MiB aligned");
    }
    let (code, out, err) = run(&["probe", "--window-base", "4G"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("CFMWS window           0x100000000 size"),
        "{out}"
    );
}

#[test]
fn acpi_refuses_an_empty_or_overflowing_mmio64_aperture() {
    usage_error(
        &["acpi", "--mmio64-size", "0", "--out", "/nonexistent"],
        "--mmio64-size",
        "must not be 0",
    );
    let dir = temp("mmio-overflow");
    let (code, _, err) = run(&[
        "acpi",
        "--count",
        "2",
        "--mmio64-base",
        "0xfffffffc00000000",
        "--mmio64-size",
        "16G",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--mmio64-base + --mmio64-size per device overflows 64 bits"),
        "{err}"
    );
    assert!(!dir.exists());
}

#[test]
fn acpi_numbers_accept_hex() {
    let dir = temp("hex");
    let (code, _, err) = run(&[
        "acpi",
        "--bus-start",
        "0x10",
        "--bus-end",
        "0x1f",
        "--segment",
        "0x2",
        "--uid",
        "0x20",
        "--window-base",
        "0x1000000000",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let json = std::fs::read_to_string(dir.join("topology.json")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let b = &v["host_bridges"][0];
    assert_eq!(b["bus_start"], 0x10);
    assert_eq!(b["bus_end"], 0x1f);
    assert_eq!(b["segment"], 2);
    assert_eq!(b["uid"], 0x20);
    assert_eq!(b["window_base"], 0x10_0000_0000u64);
    usage_error(
        &["acpi", "--bus-start", "0x100", "--out", "/nonexistent"],
        "--bus-start",
        "does not fit 8 bits",
    );
}

#[test]
fn a_simulator_path_in_device_is_refused_for_the_sim_flag() {
    let (code, out, err) = run(&["probe", "--device", "sim:v2"]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(
        err,
        "error: sim:v2: the simulator is selected with --sim (and configured by its options)\n"
    );
}
