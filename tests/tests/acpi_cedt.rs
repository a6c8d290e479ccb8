//! Our CEDT against QEMU's reference table and against ACPICA's disassembler.

mod acpi_support;

use std::process::Command;

use acpi_support::{
    DslField, acpica_or_skip, parse_dsl_fields, passthrough_topology, qemu_reference_topology, run,
    scratch, skip,
};
use cxl_acpi::build_cedt;

/// For QEMU's bios-tables-test CXL topology our CEDT equals QEMU's `CEDT.cxl` byte for
/// byte except the header's Creator ID / Creator Revision (QEMU: "BXPC" 1; ours come
/// from acpi_tables: "RVAT" 0x01000000) and therefore the checksum.
#[test]
fn cedt_matches_qemu_reference() {
    // QEMU's `tests/data/acpi/x86/q35/CEDT.cxl`: named by CXL_QEMU_REFERENCE_CEDT, else
    // looked for in the project's test-data checkout beside the repository.
    let path = std::env::var_os("CXL_QEMU_REFERENCE_CEDT").map_or_else(
        || acpi_support::repo_root().join("../shared/testdata/qemu-acpi/x86/q35/CEDT.cxl"),
        std::path::PathBuf::from,
    );
    let Ok(reference) = std::fs::read(&path) else {
        skip(
            "cedt_matches_qemu_reference",
            &format!("QEMU's reference table {} not found", path.display()),
            "set CXL_QEMU_REFERENCE_CEDT to QEMU's tests/data/acpi/x86/q35/CEDT.cxl",
        );
        return;
    };
    let ours = build_cedt(&qemu_reference_topology()).unwrap();
    assert_eq!(ours.len(), reference.len());
    assert_eq!(reference.len(), 184);
    let differing: Vec<usize> = (0..ours.len())
        .filter(|&i| ours[i] != reference[i])
        .collect();
    // Checksum (9) and Creator ID/Revision (28..36) only.
    assert!(
        differing.iter().all(|&i| i == 9 || (28..36).contains(&i)),
        "unexpected differences at {differing:?}"
    );
    assert_eq!(&ours[28..32], b"RVAT");
    assert_eq!(&reference[28..32], b"BXPC");
    assert_eq!(&ours[36..], &reference[36..], "subtables");
    for t in [&ours, &reference] {
        assert_eq!(t.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0, "checksum");
    }
}

/// `iasl -d` decodes every CHBS and CFMWS field of our passthrough CEDT to the value we
/// meant, with no warning or error.
#[test]
fn iasl_decodes_every_cedt_field() {
    let Some(bin) = acpica_or_skip("iasl_decodes_every_cedt_field") else {
        return;
    };
    let dir = scratch("iasl_cedt");
    let cedt = build_cedt(&passthrough_topology()).unwrap();
    std::fs::write(dir.join("cedt.dat"), &cedt).unwrap();
    let (ok, out) = run(Command::new(bin.join("iasl"))
        .current_dir(&dir)
        .args(["-d", "cedt.dat"]));
    assert!(ok, "iasl -d failed:\n{out}");
    let lower = out.to_lowercase();
    assert!(
        !lower.contains("error") && !lower.contains("warning"),
        "{out}"
    );
    let dsl = std::fs::read_to_string(dir.join("cedt.dsl")).unwrap();
    assert!(!dsl.contains("****"), "iasl flagged something:\n{dsl}");
    let fields = parse_dsl_fields(&dsl);
    let f = |offset: usize, len: usize, name: &str, value: &str| DslField {
        offset,
        len,
        name: name.into(),
        value: value.into(),
    };
    let chbs = |at: usize, uid: &str, base: &str| {
        vec![
            f(at, 1, "Subtable Type", "00"),
            f(at + 1, 1, "Reserved", "00"),
            f(at + 2, 2, "Length", "0020"),
            f(at + 4, 4, "Associated host bridge", uid),
            f(at + 8, 4, "Specification version", "00000001"),
            f(at + 12, 4, "Reserved", "00000000"),
            f(at + 16, 8, "Register base", base),
            f(at + 24, 8, "Register length", "0000000000010000"),
        ]
    };
    let mut expected = vec![
        f(0, 4, "Signature", "\"CEDT\""),
        f(4, 4, "Table Length", &format!("{:08X}", cedt.len())),
        f(8, 1, "Revision", "01"),
        f(9, 1, "Checksum", &format!("{:02X}", cedt[9])),
        f(10, 6, "Oem ID", "\"CXLPT \""),
        f(16, 8, "Oem Table ID", "\"CXLPTVMM\""),
        f(24, 4, "Oem Revision", "00000001"),
        f(28, 4, "Asl Compiler ID", "\"RVAT\""),
        f(32, 4, "Asl Compiler Revision", "01000000"),
    ];
    expected.extend(chbs(36, "00000007", "00000000FED00000"));
    expected.extend(chbs(68, "00000009", "00000000FED10000"));
    // Window 0: 256 MiB at 12 GiB, 1 way, defaults (256 B, 0x15, QTG 0), target 7.
    let w0 = 100;
    expected.extend([
        f(w0, 1, "Subtable Type", "01"),
        f(w0 + 1, 1, "Reserved", "00"),
        f(w0 + 2, 2, "Length", "0028"),
        f(w0 + 4, 4, "Reserved", "00000000"),
        f(w0 + 8, 8, "Window base address", "0000000300000000"),
        f(w0 + 16, 8, "Window size", "0000000010000000"),
        f(w0 + 24, 1, "Interleave Members", "00"),
        f(w0 + 25, 1, "Interleave Arithmetic", "00"),
        f(w0 + 26, 2, "Reserved", "0000"),
        f(w0 + 28, 4, "Granularity", "00000000"),
        f(w0 + 32, 2, "Restrictions", "0015"),
        f(w0 + 34, 2, "QtgId", "0000"),
        f(w0 + 36, 4, "First Target", "00000007"),
    ]);
    // Window 1: 2 GiB at 16 GiB, 2 ways (9, 7), 4 KiB, QTG 2.
    let w1 = 140;
    expected.extend([
        f(w1, 1, "Subtable Type", "01"),
        f(w1 + 1, 1, "Reserved", "00"),
        f(w1 + 2, 2, "Length", "002C"),
        f(w1 + 4, 4, "Reserved", "00000000"),
        f(w1 + 8, 8, "Window base address", "0000000400000000"),
        f(w1 + 16, 8, "Window size", "0000000080000000"),
        f(w1 + 24, 1, "Interleave Members", "01"),
        f(w1 + 25, 1, "Interleave Arithmetic", "00"),
        f(w1 + 26, 2, "Reserved", "0000"),
        f(w1 + 28, 4, "Granularity", "00000004"),
        f(w1 + 32, 2, "Restrictions", "0015"),
        f(w1 + 34, 2, "QtgId", "0002"),
        f(w1 + 36, 4, "First Target", "00000009"),
        f(w1 + 40, 4, "Next Target", "00000007"),
    ]);
    assert_eq!(fields, expected, "full disassembly:\n{dsl}");
    assert_eq!(w1 + 44, cedt.len());
}
