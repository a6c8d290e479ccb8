//! The assertions of the nested end-to-end test, evaluated on a parsed console so every
//! one of them is reported (pass or fail with the evidence) instead of stopping at the
//! first failure.

use super::console::{Console, HostWindow, dwords_le, host_windows, num, vmm_saw};

/// What the run was asked to do.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// Guest kernel version prefix, e.g. `"6.12."`.
    pub kernel_prefix: &'a str,
    /// Number of simulated CXL devices (one per PCI segment 1..=n).
    pub devices: usize,
}

/// One assertion's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Stable name (`<what>` or `<what>[<bdf>]`).
    pub name: String,
    /// Whether it held (true for a check that does not apply, see `na`).
    pub pass: bool,
    /// Does not apply to this guest kernel (reported as `N/A`, with the reason).
    pub na: bool,
    /// The evidence (the values compared).
    pub detail: String,
}

pub(super) fn check(
    out: &mut Vec<Check>,
    name: impl Into<String>,
    pass: bool,
    detail: impl Into<String>,
) {
    out.push(Check {
        name: name.into(),
        pass,
        na: false,
        detail: detail.into(),
    });
}

pub(super) fn not_applicable(
    out: &mut Vec<Check>,
    name: impl Into<String>,
    why: impl Into<String>,
) {
    out.push(Check {
        name: name.into(),
        pass: true,
        na: true,
        detail: why.into(),
    });
}

/// Whether the guest kernel adds host-bridge dports lazily, from a memdev's port walk
/// (since 6.18, verified in 7.3; spec/guest-topology.md 2.3) instead of at port probe.
fn deferred_dports(c: &Console) -> bool {
    let k = c.get("l2.kernel").unwrap_or("");
    let mut v = k.split(['.', '-', '+']).map(|x| x.parse::<u32>().ok());
    matches!((v.next().flatten(), v.next().flatten()), (Some(a), Some(b)) if (a, b) >= (6, 18))
}

/// How the L2 was asked to use cloud-hypervisor's ACPI tables, if it was: `acpi=force` on
/// its command line, or booted through UEFI firmware (`l1.l2_firmware`, an arm64 L2 on
/// `CLOUDHV_EFI.fd`), which hands the tables to Linux.
fn acpi_asked(c: &Console) -> Option<String> {
    if let Some(fw) = c.get("l1.l2_firmware") {
        return Some(format!("UEFI firmware {fw}"));
    }
    c.get("l1.l2_cmdline")
        .filter(|l| l.split_whitespace().any(|w| w == "acpi=force"))
        .map(|l| format!("{l:?}"))
}

/// Why the CXL core's ACPI view does not apply, when the L2 booted without ACPI tables
/// (`l2.acpi_tables=none`: an arm64 guest on cloud-hypervisor's device tree) and was not
/// asked for them ([`acpi_asked`]): `cxl_acpi` builds the CXL root, its decoders and the
/// host-bridge ports from the CEDT and ACPI0016 only.
fn without_acpi(c: &Console) -> Option<String> {
    (c.get("l2.acpi_tables") == Some("none") && acpi_asked(c).is_none()).then(|| {
        format!(
            "no ACPI tables in this {} guest (device-tree boot): cxl_acpi has no CEDT/ACPI0016",
            c.get("l2.arch").unwrap_or("?")
        )
    })
}

/// Segment number of a `SSSS:BB:DD.F` address.
fn segment_of(bdf: &str) -> Option<u16> {
    u16::from_str_radix(bdf.split(':').next()?, 16).ok()
}

/// Every check for one run.
pub fn evaluate(c: &Console, ex: &Expect<'_>) -> Vec<Check> {
    let mut out = Vec::new();
    boot_chain(c, ex, &mut out);
    let windows = host_windows(c);
    check(
        &mut out,
        "vmm_windows_logged",
        windows.len() == ex.devices,
        format!("{windows:x?}"),
    );
    let devs: Vec<&str> = c
        .get("cxl.pci_devices")
        .map(|v| v.split_whitespace().collect())
        .unwrap_or_default();
    check(
        &mut out,
        "cxl_devices_found",
        devs.len() == ex.devices,
        format!("PCI functions with a CXL Device DVSEC: {devs:?}"),
    );
    if let Some(how) = acpi_asked(c) {
        let tables = c.get("l2.acpi_tables").unwrap_or("");
        check(
            &mut out,
            "l2_uses_acpi_tables",
            !tables.is_empty() && tables != "none",
            format!("tables {tables:?} with {how}"),
        );
    }
    match without_acpi(c) {
        Some(why) => not_applicable(&mut out, "cxl_root0", why),
        None => check(
            &mut out,
            "cxl_root0",
            c.get("cxl.dev.root0").is_some(),
            format!("root0 driver: {:?}", c.get("cxl.dev.root0")),
        ),
    }
    for bdf in &devs {
        let win = segment_of(bdf).and_then(|s| windows.iter().find(|w| w.segment == s));
        device_checks(c, bdf, win, &mut out);
    }
    if super::region::has_type2_api(c) {
        super::region::driver_loaded(c, &mut out);
        super::region::regions_per_device(c, ex.devices, &mut out);
    }
    no_cxl_errors(c, &mut out);
    out
}

fn boot_chain(c: &Console, ex: &Expect<'_>, out: &mut Vec<Check>) {
    check(
        out,
        "l1_kvm",
        c.get("l1.kvm") == Some("ok"),
        format!("/dev/kvm in L1: {:?}", c.get("l1.kvm")),
    );
    check(
        out,
        "l2_booted_and_vmm_exited_cleanly",
        c.get("l2.done").is_some() && c.get("l1.ch_exit") == Some("0"),
        format!(
            "l2.done={:?} cloud-hypervisor exit={:?} {:?}",
            c.get("l2.done"),
            c.get("l1.ch_exit"),
            c.all("l1.chlog")
                .into_iter()
                .filter(|l| l.contains("ERROR"))
                .map(|l| l.split_once(" -- ").map_or(l, |x| x.1))
                .collect::<Vec<_>>()
        ),
    );
    let kernel = c.get("l2.kernel").unwrap_or("");
    check(
        out,
        "l2_kernel",
        kernel.starts_with(ex.kernel_prefix),
        format!("uname -r = {kernel:?}, want {}*", ex.kernel_prefix),
    );
    let mods: Vec<(&str, &str)> = c.with_prefix("l2.insmod.").collect();
    check(
        out,
        "l2_cxl_modules_loaded",
        !mods.is_empty() && mods.iter().all(|(_, v)| *v == "ok"),
        format!("{mods:?}"),
    );
}

fn device_checks(c: &Console, bdf: &str, win: Option<&HostWindow>, out: &mut Vec<Check>) {
    let n = |what: &str| format!("{what}[{bdf}]");
    let pci = c.get(&format!("pci.{bdf}")).unwrap_or("");
    let dvsec = c.get(&format!("pci.{bdf}.cxl_dvsec")).unwrap_or("");
    check(
        out,
        n("dvsec_visible_to_linux"),
        Console::field(dvsec, "source") == Some("sysfs"),
        format!("DVSEC {dvsec:?}; {pci}"),
    );
    let parent = Console::field(pci, "parent").unwrap_or("");
    let parent_class = Console::field(pci, "parent_class").unwrap_or("");
    check(
        out,
        n("behind_root_port"),
        parent_class.starts_with("0x0604"),
        format!("parent {parent} class {parent_class}"),
    );
    let Some(win) = win else {
        check(
            out,
            n("window_known"),
            false,
            "no window logged for its segment",
        );
        return;
    };
    check(
        out,
        n("vmm_decoder_equals_window"),
        win.decoder_base == win.base && win.decoder_size <= win.size,
        format!("{win:x?}"),
    );
    if let Some(why) = without_acpi(c) {
        for name in [
            "root_decoder_is_window",
            "iomem_cxl_window",
            "hb_port_bound",
            "hb_port_dport_is_root_port",
            "hb_decoder_committed_locked_at_window",
        ] {
            not_applicable(out, n(name), why.clone());
        }
    } else {
        root_decoder(c, bdf, win, out);
        host_bridge_port(c, bdf, parent, win, out);
    }
    hdm_and_memory(c, bdf, win, "pre", 0x40, out);
    let flr = c.get(&format!("flr.{bdf}")).unwrap_or("not run");
    check(
        out,
        n("guest_flr"),
        flr == "ok",
        format!(
            "{flr}; reset_method={:?}",
            c.get(&format!("flr.{bdf}.reset_method"))
        ),
    );
    hdm_and_memory(c, bdf, win, "post", 0x80, out);
    dpa_kept_across_flr(c, bdf, win, out);
    if super::region::has_type2_api(c) {
        super::region::device(c, bdf, win, out);
    }
}

/// The UAPI revision (`"v2"`, `"v3"`) of the device on PCI segment `segment`: a simulated
/// device's from cloud-hypervisor's arguments (`l1.ch_args`:
/// `--device path=sim:v3,cxl=on,pci_segment=1,id=cxl0 ...`), a real device's as our probe
/// detected it in L1 (`l1.uapi_revision.<segment>`, the real-kernel lab).
pub fn device_revision(c: &Console, segment: u16) -> Option<&str> {
    sim_revision(c, segment).or_else(|| c.get(&format!("l1.uapi_revision.{segment}")))
}

fn sim_revision(c: &Console, segment: u16) -> Option<&str> {
    let args = c.get("l1.ch_args")?;
    args.split_whitespace().find_map(|a| {
        let opts: Vec<&str> = a.split(',').collect();
        let seg = opts
            .iter()
            .find_map(|o| o.strip_prefix("pci_segment="))?
            .parse::<u16>()
            .ok()?;
        let rev = opts.iter().find_map(|o| o.strip_prefix("path=sim:"))?;
        (seg == segment).then_some(rev)
    })
}

/// Whether the guest's FLR (a function reset through the simulated driver) keeps device
/// memory, per UAPI revision (docs/simulator.md "Memory across resets";
/// cxl-passthrough/src/backend/sim/reset.rs): v2 zaps the DPA region in the reset's
/// prepare step and, decoder 0 being committed again after the hardware reset, restores
/// the same pages in finish; v3 resets the hardware only and never zaps. Neither clears
/// memory (only a CXL reset with Mem_Clr does), so both keep it. v4 replaces every FLR
/// with a CXL reset, which always clears device memory. `None`: not a revision the
/// simulator has.
pub fn flr_keeps_dpa(revision: &str) -> Option<bool> {
    match revision {
        "v2" | "v3" => Some(true),
        "v4" => Some(false),
        _ => None,
    }
}

/// `0x40:0x11 0xffffffee ...` (offset, then dwords) as (offset, little-endian bytes).
fn offset_dwords(v: &str) -> Option<(u64, Vec<u8>)> {
    let (off, dw) = v.split_once(':')?;
    Some((num(off)?, dwords_le(dw)?))
}

/// After the FLR the guest reads back the pattern it wrote before it (`dpa.<bdf>.post.kept`
/// at 0x40): it must be there exactly when the device's revision keeps memory across a
/// function reset ([`flr_keeps_dpa`]); a memory that comes back zeroed, stale or unmapped
/// after a v2 zap/restore fails here.
fn dpa_kept_across_flr(c: &Console, bdf: &str, win: &HostWindow, out: &mut Vec<Check>) {
    let name = format!("dpa_kept_across_flr[{bdf}]");
    let rev = device_revision(c, win.segment);
    let keeps = rev.and_then(flr_keeps_dpa);
    let flr_ok = c.get(&format!("flr.{bdf}")) == Some("ok");
    let pre = c.get(&format!("dpa.{bdf}.pre.wrote")).unwrap_or("");
    let kept = c.get(&format!("dpa.{bdf}.post.kept")).unwrap_or("");
    let (pre_v, kept_v) = (offset_dwords(pre), offset_dwords(kept));
    let pass = match (keeps, &pre_v, &kept_v) {
        (Some(keeps), Some(p), Some(k)) => flr_ok && ((p == k) == keeps),
        _ => false,
    };
    let want = match keeps {
        Some(true) => "the pre-FLR pattern kept",
        Some(false) => "the pre-FLR pattern gone",
        None => "a known revision (v2/v3)",
    };
    check(
        out,
        name,
        pass,
        format!(
            "{} FLR {}: want {want}; wrote {pre:?} before, read {kept:?} after",
            rev.unwrap_or("unknown revision"),
            if flr_ok { "ok" } else { "not ok" }
        ),
    );
}

/// How long one case took, from its records.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CaseTiming {
    /// cloud-hypervisor's whole run (L2 boot, checks, power-off) on the L1 clock
    /// (`l1.ch_end - l1.ch_start`).
    pub vmm_run_s: Option<f64>,
    /// L2 uptime when its /init finished (`l2.done`).
    pub l2_done_s: Option<f64>,
}

/// The timing records of one case's console.
pub fn case_timing(c: &Console) -> CaseTiming {
    let f = |k: &str| c.get(k).and_then(|v| v.trim().parse::<f64>().ok());
    CaseTiming {
        vmm_run_s: f("l1.ch_start")
            .zip(f("l1.ch_end"))
            .map(|(a, b)| b - a)
            .filter(|d| *d >= 0.0),
        l2_done_s: f("l2.done"),
    }
}

/// The time figures of a run: one line per case, then the total wall time and the hard
/// timeout (the only limit that fails the test).
pub fn timing_report(
    cases: &[(String, CaseTiming)],
    total: std::time::Duration,
    hard_timeout: std::time::Duration,
) -> String {
    let s = |v: Option<f64>| v.map_or("?".to_string(), |v| format!("{v:.1} s"));
    let mut r = String::from("=== time ===\n");
    for (label, t) in cases {
        r += &format!(
            "{label:<10} cloud-hypervisor run {} (L1 clock), L2 /init done at {} of L2 uptime\n",
            s(t.vmm_run_s),
            s(t.l2_done_s)
        );
    }
    r += &format!(
        "total      {:.1} s wall (host preparation, L1 boot, every case); fails only past the hard timeout of {} s\n",
        total.as_secs_f64(),
        hard_timeout.as_secs()
    );
    r
}

fn attr<'a>(c: &'a Console, dev: &str, a: &str) -> &'a str {
    c.get(&format!("cxl.{dev}.{a}")).unwrap_or("")
}

fn decoders(c: &Console) -> Vec<String> {
    c.with_prefix("cxl.dev.decoder")
        .map(|(k, _)| k.trim_start_matches("cxl.dev.").to_string())
        .collect()
}

fn root_decoder(c: &Console, bdf: &str, win: &HostWindow, out: &mut Vec<Check>) {
    let n = |what: &str| format!("{what}[{bdf}]");
    let found = decoders(c).into_iter().find(|d| {
        d.starts_with("decoder0.")
            && num(attr(c, d, "start")) == Some(win.base)
            && num(attr(c, d, "size")) == Some(win.size)
    });
    let all: Vec<String> = decoders(c)
        .iter()
        .map(|d| {
            format!(
                "{d} start={} size={} type2={} locked={}",
                attr(c, d, "start"),
                attr(c, d, "size"),
                attr(c, d, "cap_type2"),
                attr(c, d, "locked")
            )
        })
        .collect();
    check(
        out,
        n("root_decoder_is_window"),
        found
            .as_ref()
            .is_some_and(|d| attr(c, d, "cap_type2") == "1" && attr(c, d, "locked") == "1"),
        format!(
            "want decoder0.x {:#x}+{:#x} type2 locked; have {all:?}",
            win.base, win.size
        ),
    );
    let line = format!(
        "{:x}-{:x} : CXL Window",
        win.base,
        win.base + win.size.saturating_sub(1)
    );
    let iomem = c.all("iomem");
    check(
        out,
        n("iomem_cxl_window"),
        iomem.iter().any(|l| l.starts_with(&line)),
        format!("want {line:?}; have {iomem:?}"),
    );
}

fn host_bridge_port(c: &Console, bdf: &str, rp: &str, win: &HostWindow, out: &mut Vec<Check>) {
    let n = |what: &str| format!("{what}[{bdf}]");
    let hb = format!("pci{:04x}:00", win.segment);
    let port = c
        .with_prefix("cxl.")
        .find(|(k, v)| k.ends_with(".uport") && *v == hb)
        .map(|(k, _)| {
            k.trim_start_matches("cxl.")
                .trim_end_matches(".uport")
                .to_string()
        });
    let Some(port) = port else {
        check(
            out,
            n("hb_port_bound"),
            false,
            format!("no CXL port with uport {hb}"),
        );
        return;
    };
    let drv = c.get(&format!("cxl.dev.{port}")).unwrap_or("");
    check(
        out,
        n("hb_port_bound"),
        drv == "cxl_port",
        format!("{port} (uport {hb}) driver {drv}"),
    );
    let dports = attr(c, &port, "dports");
    let memdev = c.with_prefix("cxl.dev.mem").next().is_some();
    if deferred_dports(c) && !memdev && dports.is_empty() {
        // Nothing in this guest creates a memdev (no Type-2 driver binds the simulated
        // device), so a deferred-dport kernel never walks up to the root port.
        let why = format!(
            "{} adds dports from a memdev's port walk; no memdev in this guest (no Type-2 driver)",
            c.get("l2.kernel").unwrap_or("")
        );
        not_applicable(out, n("hb_port_dport_is_root_port"), why.clone());
        not_applicable(out, n("hb_decoder_committed_locked_at_window"), why);
        return;
    }
    check(
        out,
        n("hb_port_dport_is_root_port"),
        dports
            .split_whitespace()
            .any(|d| d.ends_with(&format!(":{rp}"))),
        format!("{port} dports {dports:?}, device parent {rp}"),
    );
    let id = port.trim_start_matches("port");
    let mine: Vec<String> = decoders(c)
        .into_iter()
        .filter(|d| {
            d.strip_prefix("decoder")
                .and_then(|r| r.split_once('.'))
                .map(|x| x.0)
                == Some(id)
        })
        .collect();
    let ok = mine.iter().any(|d| {
        num(attr(c, d, "start")) == Some(win.decoder_base)
            && num(attr(c, d, "size")) == Some(win.decoder_size)
            && attr(c, d, "locked") == "1"
    });
    let seen: Vec<String> = mine
        .iter()
        .map(|d| {
            format!(
                "{d} start={} size={} locked={}",
                attr(c, d, "start"),
                attr(c, d, "size"),
                attr(c, d, "locked")
            )
        })
        .collect();
    check(
        out,
        n("hb_decoder_committed_locked_at_window"),
        ok,
        format!(
            "want {:#x}+{:#x} locked; {port} decoders {seen:?}",
            win.decoder_base, win.decoder_size
        ),
    );
}

/// The simulator seeds device memory with this (cloud-hypervisor's `cxl-sim` feature).
pub(super) const SEED: &[u8; 16] = b"CXL-SIM-DPA-SEED";

/// What the first 16 bytes of the device memory on `segment` hold in `phase` ("pre" or
/// "post" the guest's FLR): the VMM's [`SEED`], or zeros after the FLR of a revision whose
/// FLR clears device memory ([`flr_keeps_dpa`]: v4's FLR is a CXL reset with Mem_Clr).
pub(super) fn expected_seed(c: &Console, segment: u16, phase: &str) -> [u8; 16] {
    let cleared =
        phase == "post" && device_revision(c, segment).and_then(flr_keeps_dpa) == Some(false);
    if cleared { [0; 16] } else { *SEED }
}

fn hdm_and_memory(
    c: &Console,
    bdf: &str,
    win: &HostWindow,
    phase: &str,
    offset: u64,
    out: &mut Vec<Check>,
) {
    let n = |what: &str| format!("{what}.{phase}[{bdf}]");
    // The component registers answer at the BAR address Linux assigned (l2-init.sh looks
    // at the boot-time address too when nothing answers there, so that the checks below
    // still run; `used` says where it found them).
    let bar = c.get(&format!("bar.{bdf}.{phase}")).unwrap_or("not run");
    let (sysfs, used) = (Console::field(bar, "sysfs"), Console::field(bar, "used"));
    check(
        out,
        n("component_bar_where_linux_put_it"),
        sysfs.and_then(num).is_some() && sysfs.and_then(num) == used.and_then(num),
        format!("{bar}; want used = sysfs"),
    );
    let hdm = c.get(&format!("hdm.{bdf}.{phase}")).unwrap_or("not run");
    let f = |k| Console::field(hdm, k);
    check(
        out,
        n("hdm_decoder0_via_bar"),
        f("base").and_then(num) == Some(win.decoder_base)
            && f("size").and_then(num) == Some(win.decoder_size)
            && f("committed") == Some("1")
            && f("lock") == Some("1"),
        format!(
            "{hdm}; want base={:#x} size={:#x} committed lock",
            win.decoder_base, win.decoder_size
        ),
    );
    let seed = c
        .get(&format!("dpa.{bdf}.{phase}.seed"))
        .and_then(dwords_le);
    let detail = format!(
        "window[0..16] = {:?}",
        seed.as_ref()
            .map(|s| String::from_utf8_lossy(s).into_owned())
    );
    let seeded = seed.as_deref() == Some(expected_seed(c, win.segment, phase).as_slice());
    // cloud-hypervisor seeds the simulated device memory on every architecture (vmm-patches
    // 9; before it, only where it created the then x86-only DPA probe port).
    check(out, n("guest_reads_host_seed"), seeded, detail);
    let wrote = c.get(&format!("dpa.{bdf}.{phase}.wrote")).unwrap_or("");
    let read = c.get(&format!("dpa.{bdf}.{phase}.readback")).unwrap_or("");
    check(
        out,
        n("guest_pattern_readback"),
        !wrote.is_empty() && wrote == read,
        format!("wrote {wrote:?} read {read:?}"),
    );
    // The VMM's view comes from the simulator's DPA probe (an I/O port on x86_64, MMIO on
    // aarch64; vmm-patches 9), which logs the device memory as the VMM sees it.
    let want = wrote.split_once(':').and_then(|(_, w)| dwords_le(w));
    // Device on segment S is the S-th --device, id cxl{S-1} (l1-init.sh).
    let id = format!("cxl{}", win.segment.saturating_sub(1));
    let seen = vmm_saw(c, &id, offset);
    check(
        out,
        n("host_sees_guest_pattern"),
        want.as_ref().is_some_and(|w| seen.contains(w)),
        format!("want {want:02x?} in {id}'s DPA at {offset:#x}; VMM saw {seen:02x?}"),
    );
}

/// CXL lines in the guest's kernel log that report a failure (the `_OSC` lines name
/// capabilities such as "CXLMemErrorReporting" and are not failures).
fn no_cxl_errors(c: &Console, out: &mut Vec<Check>) {
    let bad = [
        "fail",
        "error",
        "couldn't",
        "invalid",
        "no chbs",
        "not found",
        "unable",
    ];
    let hits: Vec<&str> = c
        .all("dmesg")
        .into_iter()
        .filter(|l| {
            let l = l.to_lowercase();
            l.contains("cxl")
                && !l.contains("_osc")
                && !is_own_module_taint(&l)
                && bad.iter().any(|b| l.contains(b))
        })
        .collect();
    check(
        out,
        "no_cxl_errors_in_dmesg",
        c.get("l2.done").is_some() && hits.is_empty(),
        format!("(L2 finished: {}) {hits:#?}", c.get("l2.done").is_some()),
    );
}

/// The one expected line about our unsigned test driver (tests/guest-driver/), matched
/// exactly so that it hides no real error.
fn is_own_module_taint(lower: &str) -> bool {
    lower.ends_with(
        "cxl_t2_test: module verification failed: signature and/or required key missing - tainting kernel",
    )
}

/// A fixed-width table of the checks (one line each).
pub fn table(checks: &[Check]) -> String {
    checks
        .iter()
        .map(|k| {
            format!(
                "{} {:<52} {}\n",
                match (k.na, k.pass) {
                    (true, _) => "N/A ",
                    (false, true) => "PASS",
                    (false, false) => "FAIL",
                },
                k.name,
                k.detail.replace('\n', " ")
            )
        })
        .collect()
}
