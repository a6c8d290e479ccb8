//! `_OSC` of a CXL host bridge: answers the PCI host bridge UUID (3 DWORDs) and the CXL
//! host bridge UUID (5 DWORDs), the way Linux's `pci_root` calls it (CXL UUID first for an
//! ACPI0016 bridge, PCI UUID as fallback; a query pass, then the real request).
//!
//! Behaviour (documented in `docs/acpi.md`):
//! * unknown UUID: status bit 2, buffer returned otherwise unchanged;
//! * revision other than 1: status bit 3;
//! * buffer shorter than the DWORD count the UUID needs (3 or 5), or a count below it:
//!   status bit 1 (`_OSC` failure);
//! * PCI control (DWORD 3) granted = requested & [`PCI_CONTROL_GRANTED`];
//! * CXL control (DWORD 5) granted = requested & [`CXL_CONTROL_GRANTED`];
//! * if either grant dropped a requested bit: status bit 4 (capabilities masked), which
//!   Linux accepts on the query pass and then re-requests only what was granted;
//! * support DWORDs (2 and 4) are left as the OS wrote them; the query flag changes
//!   nothing (the answer is the same for query and commit).

use acpi_tables::Aml;
use acpi_tables::aml::{
    And, Arg, CreateDWordField, Equal, If, LessThan, Local, Method, NotEqual, Or, Path, Return,
    SizeOf, Store, Uuid,
};

/// PCI Firmware Specification host bridge `_OSC` UUID.
pub const PCI_OSC_UUID: &str = "33DB4D5B-1FF7-401C-9657-7441C03DD766";
/// CXL host bridge `_OSC` UUID (CXL 2.0+).
pub const CXL_OSC_UUID: &str = "68F2D50B-C469-4D8A-BD3D-941A103FD3FC";
/// PCI control bits granted: native hot-plug, SHPC hot-plug, PME, AER, PCIe capability
/// structure (bits 0-4, as QEMU grants). LTR and DPC are masked.
pub const PCI_CONTROL_GRANTED: u32 = 0x1F;
/// CXL control bits granted: bit 0, CXL Memory Error Reporting.
pub const CXL_CONTROL_GRANTED: u32 = 0x1;

/// `_OSC` status DWORD (DWORD 1) bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum OscStatus {
    /// Bit 0 (OS input): query only.
    Query = 1 << 0,
    /// Bit 1: `_OSC` failure.
    Failure = 1 << 1,
    /// Bit 2: unrecognized UUID.
    UnknownUuid = 1 << 2,
    /// Bit 3: unrecognized revision.
    UnknownRevision = 1 << 3,
    /// Bit 4: capabilities masked.
    CapabilitiesMasked = 1 << 4,
}

/// Which UUID matched, kept in Local0.
const KIND_NONE: u8 = 0;
const KIND_PCI: u8 = 1;
const KIND_CXL: u8 = 2;
/// DWORDs the PCI and CXL forms need.
const PCI_DWORDS: u8 = 3;
const CXL_DWORDS: u8 = 5;

/// Encodes `Method (_OSC, 4, Serialized)`.
pub fn osc_method() -> Vec<u8> {
    let cdw1 = Path::new("CDW1");
    let cdw3 = Path::new("CDW3");
    let cdw5 = Path::new("CDW5");
    let kind = Local(0);
    let granted = Local(1);

    // Status updates: CDW1 |= bit.
    let fail_bit = OscStatus::Failure as u32;
    let uuid_bit = OscStatus::UnknownUuid as u32;
    let rev_bit = OscStatus::UnknownRevision as u32;
    let masked_bit = OscStatus::CapabilitiesMasked as u32;
    let or_fail = Or::new(&cdw1, &cdw1, &fail_bit);
    let or_uuid = Or::new(&cdw1, &cdw1, &uuid_bit);
    let or_rev = Or::new(&cdw1, &cdw1, &rev_bit);
    let or_masked = Or::new(&cdw1, &cdw1, &masked_bit);
    let ret = Return::new(&Arg(3));

    // Too small for even the status DWORD: nothing can be reported.
    let size = SizeOf::new(&Arg(3));
    let four = 4u8;
    let tiny = LessThan::new(&size, &four);
    let if_tiny = If::new(&tiny, vec![&ret]);
    let create1 = CreateDWordField::new(&cdw1, &Arg(3), &0u8);

    // Which UUID?
    let pci_uuid = Uuid::new(PCI_OSC_UUID);
    let cxl_uuid = Uuid::new(CXL_OSC_UUID);
    let store_none = Store::new(&kind, &KIND_NONE);
    let is_pci = Equal::new(&Arg(0), &pci_uuid);
    let store_pci = Store::new(&kind, &KIND_PCI);
    let if_pci = If::new(&is_pci, vec![&store_pci]);
    let is_cxl = Equal::new(&Arg(0), &cxl_uuid);
    let store_cxl = Store::new(&kind, &KIND_CXL);
    let if_cxl = If::new(&is_cxl, vec![&store_cxl]);
    let unknown = Equal::new(&kind, &KIND_NONE);
    let if_unknown = If::new(&unknown, vec![&or_uuid, &ret]);

    let rev_bad = NotEqual::new(&Arg(1), &1u8);
    let if_rev = If::new(&rev_bad, vec![&or_rev, &ret]);

    // PCI part (both UUIDs): DWORDs 1-3.
    let pci_bytes = u32::from(PCI_DWORDS) * 4;
    let short_count = LessThan::new(&Arg(2), &PCI_DWORDS);
    let if_short_count = If::new(&short_count, vec![&or_fail, &ret]);
    let short_buf = LessThan::new(&size, &pci_bytes);
    let if_short_buf = If::new(&short_buf, vec![&or_fail, &ret]);
    let create3 = CreateDWordField::new(&cdw3, &Arg(3), &8u8);
    let and_pci = And::new(&granted, &cdw3, &PCI_CONTROL_GRANTED);
    let pci_masked = NotEqual::new(&granted, &cdw3);
    let if_pci_masked = If::new(&pci_masked, vec![&or_masked]);
    let store_pci_grant = Store::new(&cdw3, &granted);

    // CXL part: DWORDs 4-5.
    let cxl_bytes = u32::from(CXL_DWORDS) * 4;
    let cxl_short_count = LessThan::new(&Arg(2), &CXL_DWORDS);
    let if_cxl_short_count = If::new(&cxl_short_count, vec![&or_fail, &ret]);
    let cxl_short_buf = LessThan::new(&size, &cxl_bytes);
    let if_cxl_short_buf = If::new(&cxl_short_buf, vec![&or_fail, &ret]);
    let create5 = CreateDWordField::new(&cdw5, &Arg(3), &16u8);
    let and_cxl = And::new(&granted, &cdw5, &CXL_CONTROL_GRANTED);
    let cxl_masked = NotEqual::new(&granted, &cdw5);
    let if_cxl_masked = If::new(&cxl_masked, vec![&or_masked]);
    let store_cxl_grant = Store::new(&cdw5, &granted);
    let is_cxl_kind = Equal::new(&kind, &KIND_CXL);
    let if_cxl_part = If::new(
        &is_cxl_kind,
        vec![
            &if_cxl_short_count,
            &if_cxl_short_buf,
            &create5,
            &and_cxl,
            &if_cxl_masked,
            &store_cxl_grant,
        ],
    );

    let method = Method::new(
        "_OSC".into(),
        4,
        true,
        vec![
            &if_tiny,
            &create1,
            &store_none,
            &if_pci,
            &if_cxl,
            &if_unknown,
            &if_rev,
            &if_short_count,
            &if_short_buf,
            &create3,
            &and_pci,
            &if_pci_masked,
            &store_pci_grant,
            &if_cxl_part,
            &ret,
        ],
    );
    let mut bytes = Vec::new();
    method.to_aml_bytes(&mut bytes);
    bytes
}
