//! A real Linux guest consumes our tables: Debian's 6.12 kernel under QEMU TCG (q35) with
//! our CEDT and SSDT injected through `-acpitable`, `cxl_acpi` loaded.
//!
//! QEMU does not emulate our CHBCR, so the host-bridge port cannot probe: the test asserts
//! exactly that message and nothing worse. The CHBCR itself ([`cxl_acpi::Chbcr`]) is proven
//! by the nested end-to-end test (patched cloud-hypervisor inside a QEMU guest), see
//! docs/testing.md.

mod acpi_support;

use std::process::Command;
use std::time::Instant;

use acpi_support::{
    GUEST_TOOLS_HOST, find_tools, guest_tools_unusable, provision_hint, repo_root, run, scratch,
    skip,
};
use cxl_acpi::{AcpiDescription, CfmwsWindow, HostBridge, OemIds, build_cedt, build_ssdt};

const WINDOW_BASE: u64 = 0x10_0000_0000;
const WINDOW_SIZE: u64 = 0x1000_0000;
/// The one message allowed to mention a CXL failure: nothing answers at the CHBCR.
const CHBCR_MISSING: &str =
    "cxl port1: Couldn't locate the CXL.cache and CXL.mem capability array header.";

/// One host bridge (UID 7, segment 0, bus 0x80) and one 256 MiB Type-2 window, both above
/// QEMU's own PCI windows (its PCI0 `_CRS` ends at 0x8_FFFF_FFFF with 512 MiB of RAM).
fn guest_topology() -> AcpiDescription {
    AcpiDescription {
        host_bridges: vec![HostBridge {
            uid: 7,
            segment: 0,
            bus_start: 0x80,
            bus_end: 0x80,
            chbcr_base: WINDOW_BASE + WINDOW_SIZE,
            mmio32: None,
            mmio64: None,
            intx_routes: Vec::new(),
        }],
        windows: vec![CfmwsWindow::new(WINDOW_BASE, WINDOW_SIZE, vec![7])],
        oem: OemIds::default(),
    }
}

#[test]
fn linux_guest_builds_cxl_root_decoder_from_our_tables() {
    let name = "linux_guest_builds_cxl_root_decoder_from_our_tables";
    if let Some(why) = guest_tools_unusable() {
        skip(name, &why, GUEST_TOOLS_HOST);
        return;
    }
    let tools = match find_tools(&["kernel/vmlinuz", "busybox", "bin/qemu-system-x86_64"]) {
        Ok(t) => t,
        Err(missing) => {
            skip(
                name,
                &format!("QEMU, the Debian 6.12 kernel or busybox-static not found: {missing:?}"),
                &provision_hint("qemu kernel busybox"),
            );
            return;
        }
    };
    let dir = scratch("linux_guest");
    let topo = guest_topology();
    std::fs::write(dir.join("cedt.dat"), build_cedt(&topo).unwrap()).unwrap();
    std::fs::write(dir.join("ssdt.aml"), build_ssdt(&topo).unwrap()).unwrap();
    let started = Instant::now();
    let (ok, out) = run(Command::new("bash")
        .arg(repo_root().join("scripts/guest/run-cxl-acpi-guest.sh"))
        .arg(dir.join("cedt.dat"))
        .arg(dir.join("ssdt.aml"))
        .arg(&dir)
        .env("CXL_GUEST_TOOLS", &tools));
    std::fs::write(dir.join("console.log"), &out).unwrap();
    if let Some(line) = out.lines().find_map(|l| l.strip_prefix("SKIP:")) {
        skip(name, line.trim(), &provision_hint("qemu kernel busybox"));
        return;
    }
    eprintln!("guest run: {:.1} s", started.elapsed().as_secs_f64());
    assert!(ok, "QEMU failed:\n{out}");
    let tagged = |tag: &str| -> Vec<String> {
        out.lines()
            .filter_map(|l| l.trim_start_matches('\r').strip_prefix(tag))
            .map(|s| s.trim_end().to_string())
            .collect()
    };
    assert!(out.contains("@@ DONE"), "guest did not finish:\n{out}");
    assert!(out.contains("@@ INSMOD ok"), "{out}");

    let devs = tagged("@@ DEV ");
    for d in ["root0 ", "port1 ", "decoder0.0 "] {
        assert!(devs.iter().any(|l| l.starts_with(d)), "no {d} in {devs:?}");
    }

    let attrs = tagged("@@ DECODER0.0 ");
    let attr = |k: &str| {
        attrs
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("decoder0.0 has no {k}: {attrs:?}"))
            .to_string()
    };
    assert_eq!(attr("start"), format!("{WINDOW_BASE:#x}"));
    assert_eq!(attr("size"), format!("{WINDOW_SIZE:#x}"));
    assert_eq!(attr("cap_type2"), "1");
    assert_eq!(attr("cap_type3"), "0");
    assert_eq!(attr("cap_ram"), "1");
    assert_eq!(attr("cap_pmem"), "0");
    assert_eq!(attr("locked"), "1");
    assert_eq!(attr("interleave_ways"), "1");
    assert_eq!(attr("target_list"), "7");

    let iomem = tagged("@@ IOMEM ");
    let window = format!(
        "{:x}-{:x} : CXL Window 0",
        WINDOW_BASE,
        WINDOW_BASE + WINDOW_SIZE - 1
    );
    assert_eq!(iomem, [window], "{out}");

    let dmesg = tagged("@@ DMESG ");
    let has = |s: &str| dmesg.iter().filter(|l| l.contains(s)).count();
    assert_eq!(
        has(CHBCR_MISSING),
        1,
        "expected the CHBCR message once:\n{dmesg:#?}"
    );
    assert_eq!(has("pci0000:80: host supports CXL"), 1);
    assert_eq!(
        has("acpi ACPI0016:00: _OSC: OS now controls [CXLMemErrorReporting]"),
        1
    );
    assert_eq!(
        has("ACPI: PCI Root Bridge [CX00] (domain 0000 [bus 80])"),
        1
    );
    // Nothing worse: every other CXL line is one of the expected ones, and ACPICA did not
    // complain about our AML.
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
