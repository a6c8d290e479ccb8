//! Nested end-to-end: a real Linux guest's CXL stack on what the patched cloud-hypervisor
//! builds. QEMU TCG (nested SVM) runs an L1 Debian 6.12 guest, cloud-hypervisor inside it
//! boots an L2 Linux guest (Debian 6.12, then trixie-backports 7.3) with one, then two,
//! simulated CXL Type-2 devices; the L2 /init reports what Linux shows
//! (scripts/guest/nested/) and [`nested_support::checks::evaluate`] asserts on it.
//!
//! Needs `CXL_E2E_CLOUD_HYPERVISOR=/path/to/cloud-hypervisor` (built with the test-only
//! `cxl-sim` feature); without it the test skips loudly (one `SKIPPED` line, or a failure
//! under `CXL_REQUIRE_ALL=1`). The run time is reported per case and in total; only a
//! run past the hard timeout (15 min: something hung) fails for its time.
//! `CXL_E2E_CASES=6.12:1,7.3:2` runs a subset; a case may name the first device's UAPI
//! revision (`7.3:1:v4`; default v3). Results: docs/testing.md.

mod nested_support;

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nested_support::case::Case;
use nested_support::checks::{
    Check, Expect, case_timing, device_revision, evaluate, table, timing_report,
};
use nested_support::console::{Console, dwords_le, host_dpa_views, host_windows};
use nested_support::{Arch, Run, provision_hint, run_nested, skip};

/// `KERNEL:DEVICES[:REVISION]` (the first device's UAPI revision, default v3; the second
/// device is v2).
const ALL_CASES: [&str; 5] = ["6.12:1", "6.12:2", "7.3:1", "7.3:2", "7.3:1:v4"];

/// The arm64 cases: the arm64 6.12 kernel only (no arm64 7.3 kernel is fetched, and our
/// Type-2 test driver is an x86 module).
const ARM64_CASES: [&str; 2] = ["6.12:1", "6.12:2"];

fn cases(default: &[&str]) -> Vec<Case> {
    match std::env::var("CXL_E2E_CASES") {
        Ok(s) if !s.trim().is_empty() => s.split(',').filter_map(Case::parse).collect(),
        _ => default.iter().filter_map(|c| Case::parse(c)).collect(),
    }
}

/// Fails the run only when it takes this long: something hung. A run of the four cases
/// takes about 2 minutes on an idle 2-core machine and may take several times that on a
/// loaded one; the time itself is reported as a figure (per case and total), not judged.
const HARD_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// One nested run at a time in this test binary: each takes both cores of the machine.
static ONE_RUN: Mutex<()> = Mutex::new(());

#[test]
fn nested_e2e() {
    run_and_check(
        "nested_e2e",
        Arch::X86_64,
        &ALL_CASES,
        "patched with vmm-patches/ and built with --features cxl-sim",
    );
}

/// The same on arm64: `qemu-system-aarch64 -M virt,virtualization=on -cpu max` (TCG) runs
/// an arm64 Debian 6.12 L1 with KVM, the aarch64 cloud-hypervisor inside it boots the
/// arm64 6.12 L2 on its device tree (`CXL_E2E_ARM64_ACPI=force` tries its ACPI tables
/// instead), or, with `CXL_E2E_ARM64_FIRMWARE=/path/to/CLOUDHV_EFI.fd`, through
/// cloud-hypervisor's UEFI firmware on its ACPI tables, where the CXL core's checks must
/// pass. Without ACPI the CXL core's checks are N/A; the simulator's DPA probe is MMIO on
/// aarch64, so the host-side view of the guest's pattern is checked as on x86_64. Never in CI: the binary is a by-hand cross build
/// (docs/testing.md, "aarch64 guest").
#[test]
fn nested_e2e_arm64() {
    run_and_check(
        "nested_e2e_arm64",
        Arch::Arm64,
        &ARM64_CASES,
        "cross-built for aarch64-unknown-linux-gnu from the patched tree with --features cxl-sim \
         (docs/testing.md, \"aarch64 guest\")",
    );
}

fn run_and_check(name: &str, arch: Arch, default_cases: &[&str], build: &str) {
    if let Some(why) = cxl_integration_tests::guest_tools_unusable() {
        skip(name, &why, cxl_integration_tests::GUEST_TOOLS_HOST);
        return;
    }
    let env = arch.env();
    let Some(ch) = std::env::var_os(env).map(PathBuf::from) else {
        skip(
            name,
            &format!("{env} not set"),
            &format!("set {env}=/path/to/cloud-hypervisor, {build}"),
        );
        return;
    };
    // Set but wrong is a mistake to report, not a reason to skip.
    assert!(
        ch.is_file(),
        "{env}={} is not a file (a cloud-hypervisor built with --features cxl-sim)",
        ch.display()
    );
    let missing = arch.missing_guest_tools();
    if !missing.is_empty() {
        skip(
            name,
            &format!("guest tools not found: {missing:?}"),
            &provision_hint(arch.tools()),
        );
        return;
    }
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    // Two runs sharing the work directory would corrupt each other's initramfs trees: the
    // second one stops with a clear message instead.
    std::fs::create_dir_all(&work).expect("nested_e2e work directory");
    let lock_path = work.join(".lock");
    let lock = std::fs::File::create(&lock_path).expect("nested_e2e lock file");
    assert!(
        lock.try_lock().is_ok(),
        "another {name} run is using {} (wait for it to finish)",
        work.display()
    );
    let started = Instant::now();
    let cases = cases(default_cases);
    let console = match run_nested(arch, &ch, &cases, &work, HARD_TIMEOUT) {
        Run::Skipped(why) => {
            skip(name, &why, &provision_hint(arch.tools()));
            return;
        }
        Run::Done {
            ok,
            timed_out,
            qemu_timeout,
            console,
        } => {
            let _ = std::fs::write(work.join("console.log"), &console);
            assert!(
                !timed_out,
                "the nested run hung: QEMU killed after {qemu_timeout} s (CXL_E2E_QEMU_TIMEOUT, default the hard timeout of {} s); console {}",
                HARD_TIMEOUT.as_secs(),
                work.join("console.log").display()
            );
            assert!(ok, "run-nested.sh failed:\n{console}");
            console
        }
    };
    let elapsed = started.elapsed();
    let parsed = Console::parse(&console).cases();
    let mut failed = Vec::new();
    let mut report = String::new();
    let mut timings = Vec::new();
    for case in &cases {
        let label = case.label();
        let Some((_, c)) = parsed.iter().find(|(l, _)| *l == label) else {
            failed.push(format!("{label}: case did not run"));
            continue;
        };
        let checks = evaluate(
            c,
            &Expect {
                kernel_prefix: &format!("{}.", case.kernel),
                devices: case.devices,
            },
        );
        report += &format!("=== {label} ===\n{}", table(&checks));
        report += &counts(&checks);
        timings.push((label.clone(), case_timing(c)));
        failed.extend(
            checks
                .iter()
                .filter(|c| !c.pass)
                .map(|c| format!("{label}: {}", c.name)),
        );
    }
    report += &timing_report(&timings, elapsed, HARD_TIMEOUT);
    let _ = std::fs::write(work.join("checks.txt"), &report);
    // Straight to stderr: the harness captures print macros, and the figures are the
    // point of a by-hand run.
    let _ = writeln!(
        std::io::stderr(),
        "{report}{name}: console {}, table {}",
        work.join("console.log").display(),
        work.join("checks.txt").display()
    );
    assert!(
        elapsed < HARD_TIMEOUT,
        "the nested run took {:.0} s: over the hard timeout of {} s, something hung",
        elapsed.as_secs_f64(),
        HARD_TIMEOUT.as_secs()
    );
    assert!(failed.is_empty(), "failed checks:\n{}", failed.join("\n"));
}

/// `PASS n, FAIL n, N/A n` of one case.
fn counts(checks: &[Check]) -> String {
    let na = checks.iter().filter(|c| c.na).count();
    let fail = checks.iter().filter(|c| !c.pass).count();
    format!("PASS {}, FAIL {fail}, N/A {na}\n", checks.len() - na - fail)
}

// ---- The parser and the checks on canned consoles (run everywhere, no QEMU).

/// A console as a fully working stack would print it (one device on segment 1).
fn good_console() -> String {
    let b = "0001:01:00.0";
    let mut s = String::from(
        "c\x1b[?7l@@l1.kvm=ok\r\n@@l2.kernel=6.12.107+deb13-amd64\n\
         @@l1.ch_args=--platform num_pci_segments=2 --device path=sim:v3,cxl=on,pci_segment=1,id=cxl0\n\
         @@l1.ch_start=20.5\n@@l2.insmod.cxl_acpi=ok\n@@l2.done=3.1\n@@l1.ch_exit=0\n@@l1.ch_end=48.25\n\
         @@l1.chlog=cloud-hypervisor: 0.1s: <vmm> INFO:vmm/src/cxl/platform.rs:1 -- cxl: segment 1: window 0x7f00000000+0x10000000, decoder 0 locked at 0x7f00000000+0x10000000\n",
    );
    s += &format!(
        "@@cxl.pci_devices={b}\n@@pci.{b}=vendor=0x1e98 device=0x0001 class=0x120000 parent=0001:00:01.0 parent_class=0x060400 cfg_size=4096\n"
    );
    s += &format!("@@pci.{b}.cxl_dvsec=0x100 source=sysfs\n");
    s += "@@cxl.dev.root0=cxl_acpi\n@@cxl.dev.port1=cxl_port\n@@cxl.port1.uport=pci0001:00\n@@cxl.port1.dports=dport0:0001:00:01.0\n";
    s += "@@cxl.dev.decoder0.0=none\n@@cxl.decoder0.0.start=0x7f00000000\n@@cxl.decoder0.0.size=0x10000000\n@@cxl.decoder0.0.cap_type2=1\n@@cxl.decoder0.0.locked=1\n";
    s += "@@cxl.dev.decoder1.0=none\n@@cxl.decoder1.0.start=0x7f00000000\n@@cxl.decoder1.0.size=0x10000000\n@@cxl.decoder1.0.locked=1\n";
    s += "@@iomem=7f00000000-7f0fffffff : CXL Window 0\n";
    for (ph, off) in [("pre", "0x40"), ("post", "0x80")] {
        s += &format!(
            "@@bar.{b}.{ph}=register_locator=320 bir=2 sysfs=0xe0000000 config=0xe0000000 used=0xe0000000 cap_array=0xe0031000 header=0x2110001\n"
        );
        s += &format!(
            "@@hdm.{b}.{ph}=base=0x7f00000000 size=0x10000000 ctrl=0x700 lock=1 committed=1 target_type=0\n"
        );
        s += &format!("@@dpa.{b}.{ph}.seed=0x2d4c5843 0x2d4d4953 0x2d415044 0x44454553\n");
        s += &format!("@@dpa.{b}.{ph}.wrote={off}:0x11 0xffffffee 0x4532454c {off}\n");
        s += &format!("@@dpa.{b}.{ph}.readback={off}:0x11 0xffffffee 0x4532454c {off}\n");
        if ph == "post" {
            // The pre-FLR pattern read again after the FLR.
            s += &format!("@@dpa.{b}.post.kept=0x40:0x11 0xffffffee 0x4532454c 0x40\n");
        }
        let tag = if ph == "pre" { "40" } else { "80" };
        s += &format!(
            "@@l1.chlog=x WARN -- cxl-sim test port: host view of DPA[{off}..+32] = 11000000eeffffff4c453245{tag}000000{} |..(x)| (cxl0)\n",
            "00".repeat(16)
        );
    }
    s += &format!("@@flr.{b}=ok\n");
    s
}

fn eval(console: &str) -> Vec<Check> {
    evaluate(
        &Console::parse(console),
        &Expect {
            kernel_prefix: "6.12.",
            devices: 1,
        },
    )
}

#[test]
fn console_records_are_found_mid_line_and_trimmed() {
    let c = Console::parse("junk\x1b[2J@@a.b=1 2 \r\nno record\n@@=x\n@@a.b=3\n@@k v=1\n");
    assert_eq!(c.get("a.b"), Some("1 2"));
    assert_eq!(c.all("a.b"), ["1 2", "3"]);
    assert_eq!(c.get(""), None);
    assert_eq!(c.get("k v"), None);
    assert_eq!(Console::field("base=0x10 lock=1", "lock"), Some("1"));
    assert_eq!(Console::field("base=0x10 lock=1", "loc"), None);
    assert_eq!(dwords_le("0x2d4c5843 0x1").unwrap(), b"CXL-\x01\0\0\0");
    assert_eq!(dwords_le("0x100000000"), None);
}

#[test]
fn console_is_split_into_cases_sharing_the_l1_boot() {
    let c = Console::parse(
        "@@l1.kvm=ok\n@@run.begin=6.12-1dev\n@@l2.kernel=6.12.1\n@@run.end=6.12-1dev\n\
         @@run.begin=7.3-2dev\n@@l2.kernel=7.3.4\n",
    );
    let cases = c.cases();
    let labels: Vec<&str> = cases.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["6.12-1dev", "7.3-2dev"]);
    assert_eq!(cases[0].1.get("l1.kvm"), Some("ok"));
    assert_eq!(cases[1].1.get("l1.kvm"), Some("ok"));
    assert_eq!(cases[0].1.all("l2.kernel"), ["6.12.1"]);
    assert_eq!(cases[1].1.all("l2.kernel"), ["7.3.4"]);
    assert!(Console::parse("@@l1.kvm=ok").cases().is_empty());
}

#[test]
fn vmm_log_lines_are_parsed() {
    let c = Console::parse(&good_console());
    let w = host_windows(&c);
    assert_eq!(w.len(), 1);
    assert_eq!(
        (w[0].segment, w[0].base, w[0].size),
        (1, 0x7f_0000_0000, 0x1000_0000)
    );
    let v = host_dpa_views(&c);
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].offset, 0x40);
    assert_eq!(v[0].bytes.len(), 32);
    assert_eq!(v[0].device, "cxl0");
}

#[test]
fn a_working_stack_passes_every_check() {
    let checks = eval(&good_console());
    let failed: Vec<_> = checks.iter().filter(|c| !c.pass).collect();
    assert!(failed.is_empty(), "{}", table(&checks));
    assert!(checks.len() >= 20, "{}", table(&checks));
}

#[test]
fn each_missing_or_wrong_fact_fails_its_check() {
    let good = good_console();
    let cases: [(&str, &str, &str); 13] = [
        ("@@l1.kvm=ok", "@@l1.kvm=missing", "l1_kvm"),
        (
            "parent_class=0x060400",
            "parent_class=0x060000",
            "behind_root_port[0001:01:00.0]",
        ),
        (
            "source=sysfs",
            "source=ecam",
            "dvsec_visible_to_linux[0001:01:00.0]",
        ),
        (
            "@@cxl.dev.port1=cxl_port",
            "@@cxl.dev.port1=none",
            "hb_port_bound[0001:01:00.0]",
        ),
        (
            "dport0:0001:00:01.0",
            "",
            "hb_port_dport_is_root_port[0001:01:00.0]",
        ),
        (
            "@@cxl.decoder1.0.locked=1",
            "@@cxl.decoder1.0.locked=0",
            "hb_decoder_committed_locked_at_window[0001:01:00.0]",
        ),
        (
            "@@cxl.decoder0.0.cap_type2=1",
            "@@cxl.decoder0.0.cap_type2=0",
            "root_decoder_is_window[0001:01:00.0]",
        ),
        (
            " : CXL Window 0",
            " : reserved",
            "iomem_cxl_window[0001:01:00.0]",
        ),
        (
            "@@flr.0001:01:00.0=ok",
            "@@flr.0001:01:00.0=unavailable",
            "guest_flr[0001:01:00.0]",
        ),
        (
            "0x2d4c5843 0x2d4d4953",
            "0x0 0x2d4d4953",
            "guest_reads_host_seed.pre[0001:01:00.0]",
        ),
        (
            "DPA[0x80..+32] = 11",
            "DPA[0x80..+32] = 12",
            "host_sees_guest_pattern.post[0001:01:00.0]",
        ),
        ("@@l2.kernel=6.12", "@@l2.kernel=7.3", "l2_kernel"),
        // The pattern seen in another device's memory does not count.
        (
            "|..(x)| (cxl0)",
            "|..(x)| (cxl1)",
            "host_sees_guest_pattern.pre[0001:01:00.0]",
        ),
    ];
    for (from, to, name) in cases {
        assert!(good.contains(from), "{from}");
        let checks = eval(&good.replacen(from, to, 1));
        let bad: Vec<&str> = checks
            .iter()
            .filter(|c| !c.pass)
            .map(|c| c.name.as_str())
            .collect();
        assert!(bad.contains(&name), "{from} -> {to}: failed {bad:?}");
    }
    // Locked but not committed through the BAR.
    let checks = eval(&good.replacen("committed=1", "committed=0", 1));
    assert!(
        checks
            .iter()
            .any(|c| !c.pass && c.name == "hdm_decoder0_via_bar.pre[0001:01:00.0]")
    );
    // _OSC capability names are not errors; a CXL error in the guest log is.
    let osc = "@@dmesg=acpi ACPI0016:00: _OSC: OS now controls [CXLMemErrorReporting]\n";
    assert!(eval(&format!("{good}{osc}")).iter().all(|c| c.pass));
    let checks = eval(&format!(
        "{good}@@dmesg=cxl port1: Couldn't locate the CXL.cache and CXL.mem capability array header.\n"
    ));
    assert!(
        checks
            .iter()
            .any(|c| !c.pass && c.name == "no_cxl_errors_in_dmesg")
    );
    // A deferred-dport kernel (>= 6.18) without a memdev: the dport and host-bridge
    // decoder checks do not apply; with a memdev they do.
    let k73 = good
        .replacen(
            "@@l2.kernel=6.12.107+deb13-amd64",
            "@@l2.kernel=7.3.4+deb13-amd64",
            1,
        )
        .replacen("dport0:0001:00:01.0", "", 1);
    let checks = evaluate(
        &Console::parse(&k73),
        &Expect {
            kernel_prefix: "7.3.",
            devices: 1,
        },
    );
    let na: Vec<&str> = checks
        .iter()
        .filter(|c| c.na)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        na,
        [
            "hb_port_dport_is_root_port[0001:01:00.0]",
            "hb_decoder_committed_locked_at_window[0001:01:00.0]"
        ]
    );
    let checks = evaluate(
        &Console::parse(&format!("{k73}@@cxl.dev.mem0=cxl_mem\n")),
        &Expect {
            kernel_prefix: "7.3.",
            devices: 1,
        },
    );
    assert!(
        checks
            .iter()
            .any(|c| !c.pass && c.name == "hb_port_dport_is_root_port[0001:01:00.0]")
    );
    // Nothing at all: every check fails, none passes by default.
    assert!(eval("").iter().all(|c| !c.pass), "{}", table(&eval("")));
}

fn failed_names(checks: &[Check]) -> Vec<&str> {
    checks
        .iter()
        .filter(|c| !c.pass)
        .map(|c| c.name.as_str())
        .collect()
}

#[test]
fn dpa_kept_across_flr_is_asserted_per_revision() {
    const KEPT: &str = "dpa_kept_across_flr[0001:01:00.0]";
    let good = good_console();
    // v3 (segment 1 in the canned console): the pre-FLR pattern read back after the FLR.
    let checks = eval(&good);
    let kept = checks
        .iter()
        .find(|c| c.name == KEPT)
        .expect("the check runs");
    assert!(kept.pass, "{}", table(&checks));
    assert!(kept.detail.starts_with("v3 FLR ok"), "{}", kept.detail);
    // v2 keeps memory too (its reset zaps and restores the DPA pages).
    let v2 = good.replacen("path=sim:v3", "path=sim:v2", 1);
    let checks = eval(&v2);
    let kept = checks
        .iter()
        .find(|c| c.name == KEPT)
        .expect("the check runs");
    assert!(
        kept.pass && kept.detail.starts_with("v2 "),
        "{}",
        table(&checks)
    );
    let kept_line = "@@dpa.0001:01:00.0.post.kept=0x40:0x11 0xffffffee 0x4532454c 0x40";
    assert!(good.contains(kept_line));
    for (what, console) in [
        // Lost: zeroed after the FLR (a v2 region not restored, or memory cleared).
        (
            "zeroed",
            good.replacen(
                kept_line,
                "@@dpa.0001:01:00.0.post.kept=0x40:0x0 0x0 0x0 0x0",
                1,
            ),
        ),
        // All-ones: the window read through a zapped/unmapped region.
        (
            "all-ones",
            good.replacen(
                kept_line,
                "@@dpa.0001:01:00.0.post.kept=0x40:0xffffffff 0xffffffff 0xffffffff 0xffffffff",
                1,
            ),
        ),
        ("missing", good.replacen(kept_line, "", 1)),
        (
            "garbled",
            good.replacen(kept_line, "@@dpa.0001:01:00.0.post.kept=0x40", 1),
        ),
        // The FLR did not happen: keeping the pattern proves nothing.
        (
            "no FLR",
            good.replacen("@@flr.0001:01:00.0=ok", "@@flr.0001:01:00.0=failed EIO", 1),
        ),
        // A revision the simulator does not have has no expectation.
        (
            "unknown revision",
            good.replacen("path=sim:v3", "path=sim:v9", 1),
        ),
        (
            "no arguments",
            good.replacen("@@l1.ch_args=", "@@l1.other=", 1),
        ),
    ] {
        let checks = eval(&console);
        assert!(
            failed_names(&checks).contains(&KEPT),
            "{what}: {}",
            table(&checks)
        );
    }
}

#[test]
fn the_seed_after_the_flr_is_expected_per_revision() {
    const SEED_POST: &str = "guest_reads_host_seed.post[0001:01:00.0]";
    let seed_line = "@@dpa.0001:01:00.0.post.seed=0x2d4c5843 0x2d4d4953 0x2d415044 0x44454553";
    let zeroed = "@@dpa.0001:01:00.0.post.seed=0x0 0x0 0x0 0x0";
    let good = good_console();
    assert!(good.contains(seed_line));
    let pass = |console: &str| {
        eval(console)
            .iter()
            .find(|c| c.name == SEED_POST)
            .expect("the check runs")
            .pass
    };
    // v3 keeps the device memory across the FLR: the seed is still there.
    assert!(pass(&good));
    assert!(
        !pass(&good.replacen(seed_line, zeroed, 1)),
        "v3 lost its seed"
    );
    // v4's FLR is a CXL reset that clears the device memory: zeros, not the seed.
    let v4 = good.replacen("path=sim:v3", "path=sim:v4", 1);
    assert!(pass(&v4.replacen(seed_line, zeroed, 1)));
    assert!(!pass(&v4), "v4 kept the seed through a clearing reset");
}

/// The canned console as an arm64 L2 on cloud-hypervisor's device tree shows it: no ACPI
/// tables (so no CXL core objects).
fn arm64_fdt_console() -> String {
    let mut s = format!(
        "{}@@l2.arch=aarch64\n@@l2.acpi_tables=none\n@@l1.l2_cmdline=console=ttyAMA0 iomem=relaxed\n",
        good_console()
    );
    s = s
        .lines()
        .filter(|l| {
            !l.starts_with("@@cxl.") && !l.starts_with("@@iomem=")
                || l.starts_with("@@cxl.pci_devices=")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    s
}

#[test]
fn an_arm64_device_tree_guest_has_no_cxl_acpi_checks() {
    let console = arm64_fdt_console();
    let checks = eval(&console);
    assert!(failed_names(&checks).is_empty(), "{}", table(&checks));
    let na: Vec<&str> = checks
        .iter()
        .filter(|c| c.na)
        .map(|c| c.name.as_str())
        .collect();
    for name in [
        "cxl_root0",
        "root_decoder_is_window[0001:01:00.0]",
        "hb_port_bound[0001:01:00.0]",
    ] {
        assert!(na.contains(&name), "{name}: {}", table(&checks));
    }
    // cloud-hypervisor seeds the device memory on arm64 too and has its DPA probe there
    // (vmm-patches 9): those checks apply, and zeros fail.
    assert!(!na.contains(&"guest_reads_host_seed.pre[0001:01:00.0]"));
    assert!(!na.contains(&"host_sees_guest_pattern.post[0001:01:00.0]"));
    let zeroed = console.replacen(
        "pre.seed=0x2d4c5843 0x2d4d4953 0x2d415044 0x44454553",
        "pre.seed=0x0 0x0 0x0 0x0",
        1,
    );
    assert!(failed_names(&eval(&zeroed)).contains(&"guest_reads_host_seed.pre[0001:01:00.0]"));
    // Asked for ACPI (acpi=force, or booted through UEFI firmware) but booted without:
    // that fails, and the CXL core's checks apply again (and fail).
    let forced = console.replace(
        "@@l1.l2_cmdline=console=ttyAMA0 iomem=relaxed",
        "@@l1.l2_cmdline=console=ttyAMA0 acpi=force acpi_rsdp=0x40200000",
    );
    let uefi = format!("{console}@@l1.l2_firmware=/fw/CLOUDHV_EFI.fd\n");
    for asked in [forced, uefi] {
        let failed = failed_names(&eval(&asked))
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        for name in [
            "l2_uses_acpi_tables",
            "cxl_root0",
            "hb_port_bound[0001:01:00.0]",
        ] {
            assert!(failed.iter().any(|f| f == name), "{name}: {failed:?}");
        }
    }
}

#[test]
fn an_arm64_uefi_guest_runs_the_cxl_core_checks() {
    // An arm64 L2 booted through CLOUDHV_EFI.fd: ACPI tables, so the CXL core's checks
    // run (none is N/A) and pass on the canned x86 view of the same topology.
    let console = format!(
        "{}@@l2.arch=aarch64\n@@l2.acpi_tables=APIC CEDT DSDT IORT MCFG\n\
         @@l1.l2_firmware=/fw/CLOUDHV_EFI.fd\n",
        good_console()
    );
    let checks = eval(&console);
    assert!(failed_names(&checks).is_empty(), "{}", table(&checks));
    for name in [
        "l2_uses_acpi_tables",
        "cxl_root0",
        "root_decoder_is_window[0001:01:00.0]",
        "iomem_cxl_window[0001:01:00.0]",
        "hb_port_bound[0001:01:00.0]",
    ] {
        assert!(
            checks.iter().any(|c| c.name == name && !c.na),
            "{name}: {}",
            table(&checks)
        );
    }
}

#[test]
fn component_registers_must_answer_where_linux_put_the_bar() {
    const NAME: &str = "component_bar_where_linux_put_it.pre[0001:01:00.0]";
    let good = good_console();
    assert!(!failed_names(&eval(&good)).contains(&NAME));
    // Linux moved the BAR (a device-tree arm64 guest reassigns every BAR) and the VMM did
    // not follow: the registers answer only at the boot-time address.
    let moved = good.replacen("used=0xe0000000", "used=0x3fbfeffc0000", 1);
    assert!(failed_names(&eval(&moved)).contains(&NAME));
    let missing = good.replacen("@@bar.0001:01:00.0.pre=", "@@other=", 1);
    assert!(failed_names(&eval(&missing)).contains(&NAME));
}

#[test]
fn the_host_view_of_the_pattern_is_checked_on_arm64_too() {
    const HOST: [&str; 2] = [
        "host_sees_guest_pattern.pre[0001:01:00.0]",
        "host_sees_guest_pattern.post[0001:01:00.0]",
    ];
    // cloud-hypervisor's DPA probe is MMIO on aarch64 (vmm-patches 9): an arm64 L2 whose
    // VMM logged no DPA view fails both, as an x86_64 one does.
    let with_view = format!("{}@@l2.arch=aarch64\n", good_console());
    assert!(failed_names(&eval(&with_view)).is_empty());
    let without: String = with_view
        .lines()
        .filter(|l| !l.contains("host view of DPA"))
        .map(|l| format!("{l}\n"))
        .collect();
    for arch in ["aarch64", "x86_64"] {
        let checks = eval(&without.replace("@@l2.arch=aarch64", &format!("@@l2.arch={arch}")));
        for name in HOST {
            assert!(
                failed_names(&checks).contains(&name),
                "{arch}: {}",
                table(&checks)
            );
        }
    }
}

#[test]
fn device_revision_comes_from_the_vmm_arguments() {
    let c = Console::parse(
        "@@l1.ch_args=--platform num_pci_segments=3 --device path=sim:v3,cxl=on,pci_segment=1,id=cxl0 \
         --device path=sim:v2,cxl=on,pci_segment=2,id=cxl1\n",
    );
    assert_eq!(device_revision(&c, 1), Some("v3"));
    assert_eq!(device_revision(&c, 2), Some("v2"));
    assert_eq!(device_revision(&c, 3), None);
    assert_eq!(device_revision(&Console::parse(""), 1), None);
}

#[test]
fn time_is_reported_per_case_and_in_total() {
    let c = Console::parse(&good_console());
    let t = case_timing(&c);
    assert_eq!(t.vmm_run_s, Some(27.75));
    assert_eq!(t.l2_done_s, Some(3.1));
    let missing = case_timing(&Console::parse("@@l1.ch_start=5\n"));
    assert_eq!(missing.vmm_run_s, None);
    let r = timing_report(
        &[("6.12-1dev".into(), t), ("7.3-2dev".into(), missing)],
        Duration::from_secs_f64(301.26),
        Duration::from_secs(900),
    );
    assert!(r.contains("6.12-1dev  cloud-hypervisor run 27.8 s"), "{r}");
    assert!(r.contains("L2 /init done at 3.1 s"), "{r}");
    assert!(r.contains("7.3-2dev   cloud-hypervisor run ? "), "{r}");
    assert!(r.contains("total      301.3 s wall"), "{r}");
    assert!(r.contains("hard timeout of 900 s"), "{r}");
}
