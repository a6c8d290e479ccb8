//! The demo end to end on the simulator: one device, two devices, a reset in the middle
//! of guest activity, both UAPI revisions. Skips loudly without /dev/kvm or off x86-64.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup should abort the test

use super::kvm_gate::kvm_or_skip;
use crate::demo::report::{DemoReport, Verdict};
use crate::demo::scenario::{DemoOptions, run_devices};
use crate::demo::sim_devices;
use cxl_passthrough::backend::sim::SimConfig;
use cxl_passthrough::uapi::UapiRevision;

/// Small and quick, with the CLI's defaults for bandwidth: the 0.98 goal is reported, the
/// check is that the window runs at memory speed (the shared CI machine is noisy).
fn opts(reset: bool, write_bar: bool) -> DemoOptions {
    DemoOptions {
        bandwidth_bytes: 4 << 20,
        passes: 3,
        trap_accesses: 200,
        reset_midway: reset,
        bandwidth_goal: 0.98,
        strict_bandwidth: false,
        page_size: 4096,
        write_bar,
    }
}

fn run(count: usize, rev: UapiRevision, reset: bool, write_bar: bool) -> DemoReport {
    let cfg = SimConfig {
        dpa_size: 256 << 20,
        ..SimConfig::new(rev)
    };
    let devs = sim_devices(count, &cfg).unwrap();
    let mut lines = vec![];
    let r = run_devices(devs, &opts(reset, write_bar), &mut |l| {
        lines.push(l.to_string())
    })
    .unwrap();
    eprintln!("{}\n{}", lines.join("\n"), r.to_text());
    assert!(lines.iter().any(|l| l.starts_with("[guest]")));
    r
}

fn assert_all_pass(r: &DemoReport) {
    let failed: Vec<_> = r.failures().collect();
    assert!(failed.is_empty(), "failed checks: {failed:#?}");
    assert!(r.passed);
}

#[test]
fn one_device_v2_every_check_passes() {
    if !kvm_or_skip("one_device_v2_every_check_passes") {
        return;
    }
    let r = run(1, UapiRevision::V2, false, true);
    assert_all_pass(&r);
    assert_eq!(r.exits["dev0.window"], 0);
    assert_eq!(r.devices[0].decoder.base, r.devices[0].window.base);
    assert!(r.devices[0].trap.unwrap().overlay_vs_noop > 0.0);
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["passed"], true);
}

#[test]
fn two_devices_v3_get_two_windows() {
    if !kvm_or_skip("two_devices_v3_get_two_windows") {
        return;
    }
    let r = run(2, UapiRevision::V3, false, false);
    assert_all_pass(&r);
    let (a, b) = (&r.devices[0], &r.devices[1]);
    assert!(!a.window.overlaps(&b.window));
    assert_eq!(r.exits["dev0.window"] + r.exits["dev1.window"], 0);
    assert!(
        r.checks
            .iter()
            .any(|c| c.name.starts_with("dev1: guest's pattern") && c.verdict == Verdict::Pass)
    );
}

#[test]
fn reset_in_the_middle_of_guest_activity() {
    if !kvm_or_skip("reset_in_the_middle_of_guest_activity") {
        return;
    }
    for rev in UapiRevision::ALL {
        let r = run(1, rev, true, true);
        assert_all_pass(&r);
        let reset = r.devices[0].reset.as_ref().unwrap();
        assert!(reset.fenced_during_reset && reset.unmapped_during_reset);
        assert!(reset.relocked.unwrap().locked);
    }
}
