//! What the demo reports: every check with its verdict, VM exits per region, and the
//! guest's measurements as ratios (human text or JSON).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use cxl_passthrough::plan::Window;
use cxl_passthrough::runtime::report::Decoder0Report;

/// Outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The check passed.
    Pass,
    /// The check failed.
    Fail,
    /// The check does not apply (the detail says why).
    Skip,
}

/// One check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Verdict.
    pub verdict: Verdict,
    /// What was seen.
    pub detail: String,
}

impl Check {
    /// A check that passes when `ok`.
    pub fn new(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            verdict: if ok { Verdict::Pass } else { Verdict::Fail },
            detail: detail.into(),
        }
    }

    /// A check that does not apply.
    pub fn skip(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            verdict: Verdict::Skip,
            detail: detail.into(),
        }
    }
}

/// Guest-measured bandwidth of one device window relative to guest RAM.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BandwidthReport {
    /// Bytes per timed pass.
    pub bytes: u64,
    /// Timed passes (the fastest counts).
    pub passes: u32,
    /// Window write bandwidth / RAM write bandwidth.
    pub write_ratio: f64,
    /// Window read bandwidth / RAM read bandwidth.
    pub read_ratio: f64,
    /// The same measurement of RAM against a second RAM buffer, just before: how far
    /// from 1.0 the method itself lands (write, read).
    pub ram_vs_ram: (f64, f64),
    /// Both ratios reach the goal within the measurement noise.
    pub goal_met: bool,
}

impl BandwidthReport {
    /// Measurement noise: the calibration's larger distance from 1.0.
    pub fn noise(&self) -> f64 {
        (1.0 - self.ram_vs_ram.0)
            .abs()
            .max((1.0 - self.ram_vs_ram.1).abs())
    }
}

/// Guest-measured cost of a trapped access to the COMP_REGS overlay.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TrapReport {
    /// Loads per timed round (the fastest round of each kind counts).
    pub accesses: u32,
    /// Overlay access cost / no-op device access cost.
    pub overlay_vs_noop: f64,
}

/// What the reset in the middle of guest activity showed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResetReport {
    /// The overlay was fenced while the memory was quiesced.
    pub fenced_during_reset: bool,
    /// The device memory was unmapped from the guest while quiesced.
    pub unmapped_during_reset: bool,
    /// Decoder 0 after the re-lock (host view).
    pub relocked: Option<Decoder0Report>,
    /// Error, if the reset failed.
    pub error: Option<String>,
}

/// One device in the demo.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceReport {
    /// Device name.
    pub name: String,
    /// Its CFMWS window.
    pub window: Window,
    /// Device memory size.
    pub dpa_size: u64,
    /// Guest physical address of the component BAR.
    pub bar_gpa: u64,
    /// Guest physical address of the emulated host bridge's CHBCR.
    pub chbcr_gpa: u64,
    /// Decoder 0 after the boot-time lock (host view).
    pub decoder: Decoder0Report,
    /// Bandwidth on the window, relative to RAM.
    pub bandwidth: Option<BandwidthReport>,
    /// Trapped-access cost.
    pub trap: Option<TrapReport>,
    /// The reset, if one was done on this device.
    pub reset: Option<ResetReport>,
}

/// The whole demo report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DemoReport {
    /// Devices.
    pub devices: Vec<DeviceReport>,
    /// VM exits per guest-physical region (memory regions must show 0).
    pub exits: BTreeMap<String, u64>,
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// The bandwidth goal (window / RAM), reported per device as `goal_met`.
    pub bandwidth_goal: f64,
    /// No check failed.
    pub passed: bool,
}

impl DemoReport {
    /// Checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.verdict == Verdict::Fail)
    }

    /// Human-readable report.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "CXL passthrough KVM demo: {}",
            if self.passed { "PASSED" } else { "FAILED" }
        );
        for d in &self.devices {
            let _ = writeln!(
                s,
                "\n{}: window {:#x}+{:#x}, device memory {:#x}, BAR at {:#x}, CHBCR at {:#x}",
                d.name, d.window.base, d.window.size, d.dpa_size, d.bar_gpa, d.chbcr_gpa
            );
            let _ = writeln!(
                s,
                "  decoder 0: base {:#x} size {:#x} committed={} locked={}",
                d.decoder.base, d.decoder.size, d.decoder.committed, d.decoder.locked
            );
            if let Some(b) = &d.bandwidth {
                let _ = writeln!(
                    s,
                    "  bandwidth window/RAM: write {:.3}, read {:.3} (goal >= {:.2} {}; RAM/RAM {:.3}/{:.3}; {} MiB x {} passes)",
                    b.write_ratio,
                    b.read_ratio,
                    self.bandwidth_goal,
                    if b.goal_met { "met" } else { "MISSED" },
                    b.ram_vs_ram.0,
                    b.ram_vs_ram.1,
                    b.bytes >> 20,
                    b.passes
                );
            }
            if let Some(t) = &d.trap {
                let _ = writeln!(
                    s,
                    "  trapped COMP_REGS access: {:.2}x a no-op device access ({} loads)",
                    t.overlay_vs_noop, t.accesses
                );
            }
            if let Some(r) = &d.reset {
                let _ = writeln!(
                    s,
                    "  reset mid-run: fenced={} unmapped={} relocked={}{}",
                    r.fenced_during_reset,
                    r.unmapped_during_reset,
                    r.relocked.is_some_and(|d| d.committed && d.locked),
                    r.error
                        .as_deref()
                        .map(|e| format!(" error: {e}"))
                        .unwrap_or_default()
                );
            }
        }
        let _ = writeln!(s, "\nVM exits per region:");
        for (label, n) in &self.exits {
            let _ = writeln!(s, "  {label:<24} {n}");
        }
        let _ = writeln!(s, "\nChecks:");
        for c in &self.checks {
            let tag = match c.verdict {
                Verdict::Pass => "PASS",
                Verdict::Fail => "FAIL",
                Verdict::Skip => "SKIP",
            };
            let _ = writeln!(s, "  [{tag}] {}: {}", c.name, c.detail);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_show_every_check_and_the_verdict() {
        let r = DemoReport {
            devices: vec![],
            exits: [("dev0.window".to_string(), 0)].into_iter().collect(),
            checks: vec![
                Check::new("a", true, "fine"),
                Check::new("b", false, "broken"),
                Check::skip("c", "n/a"),
            ],
            bandwidth_goal: 0.98,
            passed: false,
        };
        let t = r.to_text();
        assert!(t.contains("FAILED"));
        assert!(
            t.contains("[PASS] a: fine")
                && t.contains("[FAIL] b: broken")
                && t.contains("[SKIP] c")
        );
        assert!(t.contains("dev0.window"));
        assert_eq!(
            r.failures().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["checks"][1]["verdict"], "fail");
        assert_eq!(j["exits"]["dev0.window"], 0);
        assert_eq!(j["passed"], false);
    }
}
