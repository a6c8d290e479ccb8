//! The `probe` command as a user runs it: exit codes, text and JSON output.
#![allow(clippy::unwrap_used)]

mod cli_common;

use cli_common::run;

#[test]
fn help_names_the_bar_layout_flag_and_hides_the_old_name() {
    let (code, out, err) = run(&["probe", "--help"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("--bar-layout"), "{out}");
    assert!(!out.contains("--topology"), "{out}");
}

#[test]
fn json_report_for_every_revision_and_bar_layout() {
    // v3 goes through the old, hidden `--topology` name so existing scripts keep working.
    for (uapi, flag) in [
        ("v2", "--bar-layout"),
        ("v3", "--topology"),
        ("v4", "--bar-layout"),
    ] {
        for topo in ["end", "start", "middle"] {
            let (code, out, err) = run(&[
                "probe",
                "--sim",
                "--uapi",
                uapi,
                flag,
                topo,
                "--dpa-size",
                "1G",
                "--json",
            ]);
            assert_eq!(code, 0, "{err}");
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v["uapi_revision"], uapi);
            assert_eq!(v["firmware_committed"], true);
            assert_eq!(v["dpa_size"], 1u64 << 30);
            assert_eq!(v["hdm_decoder_count"], 1);
            assert_eq!(v["hdm_block_offset"], 0x1200);
            assert_eq!(v["component"]["size"], 0x10000);
            let base = v["window"]["base"].as_u64().unwrap();
            assert_eq!(base % (256 << 20), 0);
            assert_eq!(v["window"]["size"], 1u64 << 30);
            assert_eq!(v["decoder0"]["base"], base);
            assert_eq!(v["decoder0"]["committed"], true);
            assert_eq!(v["decoder0"]["locked"], true);
            assert_eq!(v["overlay"]["offset"], v["component"]["offset"]);
            let areas = v["sparse_areas"].as_array().unwrap();
            if uapi == "v4" {
                // v4 keeps only the HDM block's page from mmap: areas on both sides of it
                // (inside the component block too); the plan still maps none of the block.
                assert_eq!(areas.len(), 2, "{topo}");
            } else {
                assert_eq!(areas.len(), if topo == "middle" { 2 } else { 1 });
            }
            let mapped = v["mapped_areas"].as_array().unwrap().len();
            assert_eq!(
                mapped,
                if topo == "middle" { 2 } else { 1 },
                "{uapi} {topo}"
            );
        }
    }
}

#[test]
fn text_report_and_window_base() {
    let (code, out, err) = run(&["probe", "--window-base", "0x1000000000"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("uapi revision          v2"), "{out}");
    assert!(
        out.contains("CFMWS window           0x1000000000 size 0x20000000"),
        "{out}"
    );
    assert!(out.contains("committed=true locked=true"), "{out}");
}

#[test]
fn unsupported_devices_fail_with_a_clear_message() {
    let (code, _, err) = run(&["probe", "--sim", "--not-committed"]);
    assert_eq!(code, 1);
    assert!(err.contains("firmware-committed"), "{err}");
    let (code, _, err) = run(&["probe", "--sim", "--uapi", "v3", "--not-committed"]);
    assert_eq!(code, 1);
    assert!(err.contains("firmware-committed"), "{err}");
    // v4 falls back to plain vfio-pci: no CXL device at all, and the message says why.
    for flags in [&["--not-committed"][..], &["--decoders", "2"]] {
        let mut args = vec!["probe", "--sim", "--uapi", "v4"];
        args.extend_from_slice(flags);
        let (code, _, err) = run(&args);
        assert_eq!(code, 1, "{flags:?}");
        assert!(
            err.contains("not a CXL device") && err.contains("v4"),
            "{err}"
        );
    }
    let (code, _, err) = run(&["probe", "--device", "0000:7f:1f.7"]);
    assert_eq!(code, 1);
    assert!(err.contains("0000:7f:1f.7"), "{err}");
    let (code, _, err) = run(&["probe", "--sim", "--dpa-size", "100M"]);
    assert_eq!(code, 1);
    assert!(err.contains("256 MiB"), "{err}");
    let (code, _, _) = run(&["probe", "--sim", "--dpa-size", "lots"]);
    assert_eq!(code, 2, "clap usage error");
}
