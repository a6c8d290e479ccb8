//! Our CXL AML run through ACPICA's interpreter (the one Linux uses): acpiexec loads the
//! SSDT and evaluates every object Linux evaluates on a CXL host bridge.

mod acpi_support;

use std::path::Path;
use std::process::Command;

use acpi_support::{
    AcpiValue, acpica_or_skip, acpiexec, dwords, dwords_arg, passthrough_topology, run, scratch,
    uuid_arg,
};
use cxl_acpi::aml::{CXL_OSC_UUID, PCI_OSC_UUID, PRESERVE_CONFIG_UUID};
use cxl_acpi::{build_ssdt, cxl_aml};

/// Bits Linux 6.12 (Debian 6.12.107) passes on the query `_OSC` of an ACPI0016 bridge, as
/// its log shows in `acpi_linux_guest`: support = ExtendedConfig ASPM ClockPM Segments
/// MSI HPX-Type3 (0x11F); control = PCIeHotplug SHPCHotplug PME AER PCIeCapability LTR
/// (0x3F); CXL support = CXL11PortRegAccess CXL20PortDevRegAccess
/// CXLProtocolErrorReporting CXLNativeHot (0xF); CXL control = CXLMemErrorReporting (0x1).
const QUERY: u32 = 1;
const LINUX_PCI_SUPPORT: u32 = 0x11F;
const LINUX_PCI_CONTROL: u32 = 0x3F;
const LINUX_CXL_SUPPORT: u32 = 0xF;
const LINUX_CXL_CONTROL: u32 = 0x1;

fn write_ssdt(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("ssdt.aml");
    let ssdt = build_ssdt(&passthrough_topology()).expect("valid topology");
    std::fs::write(&p, ssdt).expect("write ssdt");
    p
}

fn osc(dev: &str, uuid: &str, rev: u32, dw: &[u32]) -> String {
    format!(
        "evaluate \\_SB.{dev}._OSC {} {rev} {} {}",
        uuid_arg(uuid),
        dw.len(),
        dwords_arg(dw)
    )
}

fn dsm(dev: &str, uuid: &str, func: u32) -> String {
    format!("evaluate \\_SB.{dev}._DSM {} 1 {func} [0]", uuid_arg(uuid))
}

fn buffer_dwords(v: &AcpiValue) -> Vec<u32> {
    match v {
        AcpiValue::Buffer(b) => dwords(b),
        other => panic!("expected a buffer, got {other:?}"),
    }
}

#[test]
fn acpiexec_evaluates_identity_objects_and_crs() {
    let Some(bin) = acpica_or_skip("acpiexec_evaluates_identity_objects_and_crs") else {
        return;
    };
    let dir = scratch("acpiexec_identity");
    let ssdt = write_ssdt(&dir);
    let cmds: Vec<String> = [
        "\\_SB.CXLM._HID",
        "\\_SB.CX00._HID",
        "\\_SB.CX00._CID",
        "\\_SB.CX00._UID",
        "\\_SB.CX00._SEG",
        "\\_SB.CX00._BBN",
        "\\_SB.CX00._CRS",
        "\\_SB.CX01._UID",
        "\\_SB.CX01._BBN",
        "\\_SB.CX01._CRS",
        "\\_SB.CX00._PRT",
        "\\_SB.CX00._CCA",
        "\\_SB.CX01._CCA",
    ]
    .iter()
    .map(|o| format!("evaluate {o}"))
    .collect();
    let (out, v) = acpiexec(&bin, &[&ssdt], &cmds);
    assert!(
        !out.contains("ACPI Error") && !out.contains("ACPI Exception"),
        "{out}"
    );
    assert_eq!(v[0], AcpiValue::String("ACPI0017".into()));
    assert_eq!(v[1], AcpiValue::String("ACPI0016".into()));
    // EISAID("PNP0A08") = 0x080AD041, EISAID("PNP0A03") = 0x030AD041.
    assert_eq!(
        v[2],
        AcpiValue::Package(vec![
            AcpiValue::Integer(0x080A_D041),
            AcpiValue::Integer(0x030A_D041)
        ])
    );
    assert_eq!(v[3], AcpiValue::Integer(7));
    assert_eq!(v[4], AcpiValue::Integer(0));
    assert_eq!(v[5], AcpiValue::Integer(0x80));
    // _CRS: WordBusNumber 0x80-0x81, DWordMemory 0xE0000000-0xEFFFFFFF,
    // QWordMemory 0x80_0000_0000 + 64 GiB, end tag. Descriptor bytes per ACPI 6.5 6.4.3.5.
    let mut crs = vec![0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00];
    for w in [0u16, 0x80, 0x81, 0, 2] {
        crs.extend(w.to_le_bytes());
    }
    crs.extend([0x87, 0x17, 0x00, 0x00, 0x0C, 0x01]);
    for d in [0u32, 0xE000_0000, 0xEFFF_FFFF, 0, 0x1000_0000] {
        crs.extend(d.to_le_bytes());
    }
    crs.extend([0x8A, 0x2B, 0x00, 0x00, 0x0C, 0x01]);
    for q in [0u64, 0x80_0000_0000, 0x8F_FFFF_FFFF, 0, 0x10_0000_0000] {
        crs.extend(q.to_le_bytes());
    }
    crs.extend([0x79, 0x00]);
    assert_eq!(v[6], AcpiValue::Buffer(crs));
    assert_eq!(v[7], AcpiValue::Integer(9));
    assert_eq!(v[8], AcpiValue::Integer(0x90));
    let mut crs1 = vec![0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00];
    for w in [0u16, 0x90, 0x90, 0, 1] {
        crs1.extend(w.to_le_bytes());
    }
    crs1.extend([0x79, 0x00]);
    assert_eq!(v[9], AcpiValue::Buffer(crs1));
    // _PRT: { slot << 16 | 0xFFFF, pin (INTA), source 0 (GSI), GSI } per route.
    let route = |slot: u64, gsi: u64| {
        AcpiValue::Package(vec![
            AcpiValue::Integer((slot << 16) | 0xFFFF),
            AcpiValue::Integer(0),
            AcpiValue::Integer(0),
            AcpiValue::Integer(gsi),
        ])
    };
    assert_eq!(v[10], AcpiValue::Package(vec![route(0, 16), route(1, 17)]));
    // _CCA = 1 on every host bridge: without it arm64 Linux gives the devices below no DMA.
    assert_eq!(v[11], AcpiValue::Integer(1));
    assert_eq!(v[12], AcpiValue::Integer(1));
}

#[test]
fn acpiexec_evaluates_osc_for_both_uuids() {
    let Some(bin) = acpica_or_skip("acpiexec_evaluates_osc_for_both_uuids") else {
        return;
    };
    let dir = scratch("acpiexec_osc");
    let ssdt = write_ssdt(&dir);
    let linux_cxl = [
        QUERY,
        LINUX_PCI_SUPPORT,
        LINUX_PCI_CONTROL,
        LINUX_CXL_SUPPORT,
        LINUX_CXL_CONTROL,
    ];
    let cmds = vec![
        // 1. CXL UUID query, as Linux sends it first: LTR masked (Linux then logs
        //    "platform does not support [LTR]").
        osc("CX00", CXL_OSC_UUID, 1, &linux_cxl),
        // 2. CXL UUID commit with what was granted: accepted unchanged, no error bits.
        osc(
            "CX00",
            CXL_OSC_UUID,
            1,
            &[0, LINUX_PCI_SUPPORT, 0x1F, LINUX_CXL_SUPPORT, 1],
        ),
        // 3. PCI UUID (the fallback), 3 DWORDs.
        osc(
            "CX01",
            PCI_OSC_UUID,
            1,
            &[QUERY, LINUX_PCI_SUPPORT, LINUX_PCI_CONTROL],
        ),
        osc("CX01", PCI_OSC_UUID, 1, &[0, LINUX_PCI_SUPPORT, 0x1F]),
        // 5. Unknown UUID, bad revision, CXL UUID with only 3 DWORDs.
        osc("CX00", PRESERVE_CONFIG_UUID, 1, &[0, 0, 0x1F]),
        osc("CX00", CXL_OSC_UUID, 2, &linux_cxl),
        osc("CX00", CXL_OSC_UUID, 1, &[0, LINUX_PCI_SUPPORT, 0x1F]),
    ];
    let (out, v) = acpiexec(&bin, &[&ssdt], &cmds);
    assert!(
        !out.contains("ACPI Error") && !out.contains("ACPI Exception"),
        "{out}"
    );
    assert_eq!(
        buffer_dwords(&v[0]),
        [QUERY | 0x10, LINUX_PCI_SUPPORT, 0x1F, LINUX_CXL_SUPPORT, 1]
    );
    assert_eq!(
        buffer_dwords(&v[1]),
        [0, LINUX_PCI_SUPPORT, 0x1F, LINUX_CXL_SUPPORT, 1]
    );
    assert_eq!(
        buffer_dwords(&v[2]),
        [QUERY | 0x10, LINUX_PCI_SUPPORT, 0x1F]
    );
    assert_eq!(buffer_dwords(&v[3]), [0, LINUX_PCI_SUPPORT, 0x1F]);
    assert_eq!(buffer_dwords(&v[4]), [0x4, 0, 0x1F], "unknown UUID");
    assert_eq!(buffer_dwords(&v[5])[0], QUERY | 0x8, "unknown revision");
    assert_eq!(buffer_dwords(&v[6])[0], 0x2, "CXL _OSC with 3 DWORDs fails");
}

#[test]
fn acpiexec_evaluates_preserve_config_dsm() {
    let Some(bin) = acpica_or_skip("acpiexec_evaluates_preserve_config_dsm") else {
        return;
    };
    let dir = scratch("acpiexec_dsm");
    let ssdt = write_ssdt(&dir);
    let cmds = vec![
        dsm("CX00", PRESERVE_CONFIG_UUID, 0),
        dsm("CX00", PRESERVE_CONFIG_UUID, 5),
        dsm("CX00", PRESERVE_CONFIG_UUID, 1),
        dsm("CX01", CXL_OSC_UUID, 0),
    ];
    let (out, v) = acpiexec(&bin, &[&ssdt], &cmds);
    assert!(
        !out.contains("ACPI Error") && !out.contains("ACPI Exception"),
        "{out}"
    );
    assert_eq!(v[0], AcpiValue::Buffer(vec![0x21]), "functions 0 and 5");
    assert_eq!(v[1], AcpiValue::Integer(0), "preserve boot configuration");
    assert_eq!(v[2], AcpiValue::Buffer(vec![0]), "unsupported function");
    assert_eq!(v[3], AcpiValue::Buffer(vec![0]), "other UUID");
}

/// The DSDT fragment (what a VMM splices into its DSDT) compiles back from its
/// disassembly: iasl -d, then iasl, with no error.
#[test]
fn iasl_round_trips_the_aml() {
    let Some(bin) = acpica_or_skip("iasl_round_trips_the_aml") else {
        return;
    };
    let dir = scratch("iasl_aml");
    let ssdt = write_ssdt(&dir);
    assert!(cxl_aml(&passthrough_topology()).unwrap().len() > 100);
    let (ok, out) = run(Command::new(bin.join("iasl"))
        .current_dir(&dir)
        .arg("-d")
        .arg(&ssdt));
    assert!(ok, "{out}");
    let (ok, out) = run(Command::new(bin.join("iasl"))
        .current_dir(&dir)
        .args(["-p", "rebuilt", "ssdt.dsl"]));
    assert!(ok && out.contains("0 Errors"), "{out}");
}
