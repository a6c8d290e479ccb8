//! The Linux-guest ACPI tests' common part: boot `scripts/guest/run-cxl-acpi-guest.sh`
//! for one architecture with our CEDT and SSDT, then assert what the guest printed (its
//! `@@` console lines) about the CXL root `cxl_acpi` built from them.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use cxl_acpi::{AcpiDescription, CfmwsWindow, HostBridge, OemIds, build_cedt, build_ssdt};

use super::{
    GUEST_TOOLS_HOST, find_tools, guest_tools_unusable, provision_hint, run, scratch, skip,
};

/// The one message allowed to mention a CXL failure: nothing answers at the CHBCR.
pub const CHBCR_MISSING: &str =
    "cxl port1: Couldn't locate the CXL.cache and CXL.mem capability array header.";

/// UID of the guest's one CXL host bridge (`decoder0.0`'s target list).
pub const HOST_BRIDGE_UID: u32 = 7;
/// Its (only) bus number. On arm64, run-cxl-acpi-guest.sh keeps it out of QEMU's PCI0
/// bus range with an empty pxb-pcie at 0x7f (docs/testing.md, "aarch64 guest").
pub const HOST_BRIDGE_BUS: u8 = 0x80;

/// The guest machine the tables are written for: where the Type-2 window and the CHBCR
/// go, and the console lines that machine adds about our tables.
pub struct GuestMachine {
    /// `--arch` of run-cxl-acpi-guest.sh.
    pub arch: &'static str,
    /// The CFMWS window (`decoder0.0` start).
    pub window_base: u64,
    /// Its size.
    pub window_size: u64,
    /// The host bridge's CHBCR (CHBS base).
    pub chbcr_base: u64,
    /// Further dmesg lines this machine prints about our tables (e.g. the initrd table
    /// upgrade's banners): each must appear, and the CXL lines among them are expected.
    pub table_banners: &'static [&'static str],
}

impl GuestMachine {
    /// One host bridge (UID 7, segment 0, bus 0x80) and one Type-2 window.
    pub fn topology(&self) -> AcpiDescription {
        AcpiDescription {
            host_bridges: vec![HostBridge {
                uid: HOST_BRIDGE_UID,
                segment: 0,
                bus_start: HOST_BRIDGE_BUS,
                bus_end: HOST_BRIDGE_BUS,
                chbcr_base: self.chbcr_base,
                mmio32: None,
                mmio64: None,
                intx_routes: Vec::new(),
            }],
            windows: vec![CfmwsWindow::new(
                self.window_base,
                self.window_size,
                vec![HOST_BRIDGE_UID],
            )],
            oem: OemIds::default(),
        }
    }
}

/// The whole guest test `name` for `machine`: skips loudly on a non-x86-64 build or
/// without the tools (`needed`, paths in the guest-tool cache; `what` names them;
/// `fetch` are fetch-tools.sh's tool names for them), else boots the guest and asserts
/// [`GuestRun::assert_cxl_root`].
pub fn check_cxl_root(
    name: &str,
    machine: &GuestMachine,
    needed: &[&str],
    what: &str,
    fetch: &str,
) {
    if let Some(why) = guest_tools_unusable() {
        skip(name, &why, GUEST_TOOLS_HOST);
        return;
    }
    let tools = match find_tools(needed) {
        Ok(t) => t,
        Err(missing) => {
            skip(
                name,
                &format!("{what} not found: {missing:?}"),
                &provision_hint(fetch),
            );
            return;
        }
    };
    match boot(&format!("linux_guest_{}", machine.arch), machine, &tools) {
        Ok(run) => run.assert_cxl_root(machine),
        Err(why) => skip(name, &why, &provision_hint(fetch)),
    }
}

/// What one guest run printed.
pub struct GuestRun {
    /// Whether QEMU exited successfully.
    pub ok: bool,
    /// The whole console (and the script's stderr).
    pub out: String,
}

/// Writes our tables for `machine` into a scratch directory named `name`, boots the guest
/// and keeps its console there. `Err` holds the script's `SKIP:` reason.
pub fn boot(name: &str, machine: &GuestMachine, tools: &Path) -> Result<GuestRun, String> {
    let dir = scratch(name);
    let topo = machine.topology();
    let cedt = build_cedt(&topo).expect("the guest topology is valid");
    let ssdt = build_ssdt(&topo).expect("the guest topology is valid");
    std::fs::write(dir.join("cedt.dat"), cedt).expect("write cedt.dat");
    std::fs::write(dir.join("ssdt.aml"), ssdt).expect("write ssdt.aml");
    let started = Instant::now();
    let (ok, out) = run(Command::new("bash")
        .arg(super::repo_root().join("scripts/guest/run-cxl-acpi-guest.sh"))
        .arg("--arch")
        .arg(machine.arch)
        .arg(dir.join("cedt.dat"))
        .arg(dir.join("ssdt.aml"))
        .arg(&dir)
        .env("CXL_GUEST_TOOLS", tools));
    std::fs::write(dir.join("console.log"), &out).expect("write console.log");
    if let Some(line) = out.lines().find_map(|l| l.strip_prefix("SKIP:")) {
        return Err(line.trim().to_string());
    }
    eprintln!(
        "{} guest run: {:.1} s",
        machine.arch,
        started.elapsed().as_secs_f64()
    );
    Ok(GuestRun { ok, out })
}

impl GuestRun {
    /// The console lines tagged `tag`, tag stripped.
    fn tagged(&self, tag: &str) -> Vec<String> {
        self.out
            .lines()
            .filter_map(|l| l.trim_start_matches('\r').strip_prefix(tag))
            .map(|s| s.trim_end().to_string())
            .collect()
    }

    /// Asserts that `cxl_acpi` built the CXL root from our tables as `machine` places
    /// them: `root0`, `port1`, `decoder0.0` with our window, Type-2 only, locked, one
    /// target; the window in /proc/iomem; the host bridge and its CXL `_OSC` grant; and
    /// nothing worse than the missing CHBCR (QEMU does not emulate it).
    pub fn assert_cxl_root(&self, machine: &GuestMachine) {
        let out = &self.out;
        assert!(self.ok, "QEMU failed:\n{out}");
        assert!(out.contains("@@ DONE"), "guest did not finish:\n{out}");
        assert!(out.contains("@@ INSMOD ok"), "{out}");

        let devs = self.tagged("@@ DEV ");
        for d in ["root0 ", "port1 ", "decoder0.0 "] {
            assert!(devs.iter().any(|l| l.starts_with(d)), "no {d} in {devs:?}");
        }

        let attrs = self.tagged("@@ DECODER0.0 ");
        let attr = |k: &str| {
            attrs
                .iter()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("decoder0.0 has no {k}: {attrs:?}"))
                .to_string()
        };
        assert_eq!(attr("start"), format!("{:#x}", machine.window_base));
        assert_eq!(attr("size"), format!("{:#x}", machine.window_size));
        assert_eq!(attr("cap_type2"), "1");
        assert_eq!(attr("cap_type3"), "0");
        assert_eq!(attr("cap_ram"), "1");
        assert_eq!(attr("cap_pmem"), "0");
        assert_eq!(attr("locked"), "1");
        assert_eq!(attr("interleave_ways"), "1");
        assert_eq!(attr("target_list"), HOST_BRIDGE_UID.to_string());

        let iomem = self.tagged("@@ IOMEM ");
        let window = format!(
            "{:x}-{:x} : CXL Window 0",
            machine.window_base,
            machine.window_base + machine.window_size - 1
        );
        assert_eq!(iomem, [window], "{out}");

        let dmesg = self.tagged("@@ DMESG ");
        let has = |s: &str| dmesg.iter().filter(|l| l.contains(s)).count();
        assert_eq!(
            has(CHBCR_MISSING),
            1,
            "expected the CHBCR message once:\n{dmesg:#?}"
        );
        let bus = HOST_BRIDGE_BUS;
        assert_eq!(has(&format!("pci0000:{bus:02x}: host supports CXL")), 1);
        assert_eq!(
            has("acpi ACPI0016:00: _OSC: OS now controls [CXLMemErrorReporting]"),
            1
        );
        assert_eq!(
            has(&format!(
                "ACPI: PCI Root Bridge [CX00] (domain 0000 [bus {bus:02x}])"
            )),
            1
        );
        for banner in machine.table_banners {
            assert!(has(banner) >= 1, "no {banner:?} in\n{dmesg:#?}");
        }
        // Nothing worse: every other CXL line is one of the expected ones, and ACPICA did
        // not complain about our AML.
        // (Our OEM ID "CXLPT " appears in the table banners.)
        let expected_cxl = [
            CHBCR_MISSING,
            "host supports CXL",
            "_OSC: OS",
            "ACPI: CEDT 0x",
            "ACPI: SSDT 0x",
            "Reserving CEDT table memory",
        ];
        let unexpected: Vec<&String> = dmesg
            .iter()
            .filter(|l| l.to_lowercase().contains("cxl"))
            .filter(|l| !expected_cxl.iter().any(|e| l.contains(e)))
            .filter(|l| !machine.table_banners.iter().any(|e| l.contains(e)))
            .collect();
        assert!(
            unexpected.is_empty(),
            "unexpected CXL messages: {unexpected:#?}"
        );
        for bad in [
            "ACPI Error",
            "ACPI BIOS Error",
            "ACPI Exception",
            "AE_",
            "No CHBS",
            "CFMWS",
        ] {
            assert_eq!(has(bad), 0, "{bad}:\n{dmesg:#?}");
        }
    }
}
