//! `parse_device_info`: both revisions, detection, and one hostile answer per error.

mod uapi_common;

use cxl_passthrough::uapi::wire::*;
use cxl_passthrough::uapi::*;
use uapi_common::*;

fn auto(b: &[u8]) -> Result<DeviceInfo, UapiError> {
    parse_device_info(b, RevisionChoice::Auto)
}

#[test]
fn v2_answer_is_normalised() {
    let d = auto(&cxl_device(v2_bytes(v2()))).unwrap();
    assert_eq!(d.flags, CXL_FLAGS);
    assert_eq!(d.num_regions, NUM_REGIONS);
    assert_eq!(d.num_irqs, 5);
    let c = d.cxl.unwrap();
    assert_eq!(c.revision, UapiRevision::V2);
    assert!(c.firmware_committed);
    assert_eq!(c.cache_capable, Some(true));
    assert_eq!(c.component_bar, BAR);
    assert_eq!(c.component_offset, COMP_OFF);
    assert_eq!(c.component_size, 0x1_0000);
    assert_eq!(
        (c.dpa_region_index, c.comp_regs_region_index),
        (DPA_IDX, COMP_IDX)
    );
    assert_eq!(c.raw, RawCxlCap::V2(v2()));
}

#[test]
fn v3_answer_is_normalised() {
    let d = auto(&cxl_device(v3_bytes(v3()))).unwrap();
    let c = d.cxl.unwrap();
    assert_eq!(c.revision, UapiRevision::V3);
    assert!(c.firmware_committed);
    assert_eq!(c.cache_capable, None);
    assert_eq!(c.component_bar, BAR);
    assert_eq!(c.component_offset, COMP_OFF);
    assert_eq!(c.component_size, 0x1_0000);
    assert_eq!(c.raw, RawCxlCap::V3(v3()));
}

#[test]
fn plain_device_has_no_cxl() {
    let b = device_answer(DEVICE_FLAGS_PCI | DEVICE_FLAGS_RESET, 9, &[], 0);
    let d = auto(&b).unwrap();
    assert_eq!(d.cxl, None);
    assert_eq!(d.unknown_flags, 0);
}

#[test]
fn v2_last_with_trailing_zero_padding_is_v2() {
    // A 512-byte buffer like the v2 selftest's: the last cap's extent includes padding,
    // so the extent allows both layouts and the region indices at @24/@28 decide.
    for pad in [0, 8, 16, 24, 400] {
        let b = device_answer(
            CXL_FLAGS,
            NUM_REGIONS,
            &[other_cap(3, 16), v2_bytes(v2())],
            pad,
        );
        let c = auto(&b).unwrap().cxl.unwrap();
        assert_eq!(c.revision, UapiRevision::V2, "pad {pad}");
        assert_eq!(c.raw, RawCxlCap::V2(v2()));
    }
    let b = device_answer(CXL_FLAGS, NUM_REGIONS, &[v3_bytes(v3())], 464);
    assert_eq!(auto(&b).unwrap().cxl.unwrap().revision, UapiRevision::V3);
}

#[test]
fn cxl_cap_first_middle_last() {
    for cap in [v2_bytes(v2()), v3_bytes(v3())] {
        let o1 = other_cap(3, 24);
        let o2 = other_cap(5, 8);
        for caps in [
            vec![cap.clone(), o1.clone(), o2.clone()],
            vec![o1.clone(), cap.clone(), o2.clone()],
            vec![o1.clone(), o2.clone(), cap.clone()],
        ] {
            let b = device_answer(CXL_FLAGS, NUM_REGIONS, &caps, 0);
            let c = auto(&b).unwrap().cxl.unwrap();
            assert_eq!(c.dpa_region_index, DPA_IDX);
            assert_eq!(c.component_offset, COMP_OFF);
        }
    }
}

#[test]
fn unknown_flags_are_reported_not_fatal() {
    let mut cap = v2();
    cap.flags |= 1 << 7;
    let b = device_answer(CXL_FLAGS | (1 << 20), NUM_REGIONS, &[v2_bytes(cap)], 0);
    let d = auto(&b).unwrap();
    assert_eq!(d.unknown_flags, 1 << 20);
    assert_eq!(d.cxl.unwrap().unknown_flags, 1 << 7);
}

#[test]
fn short_header() {
    assert!(matches!(
        auto(&[0u8; 23]),
        Err(UapiError::ShortHeader {
            len: 23,
            need: 24,
            ..
        })
    ));
}

#[test]
fn caps_flag_without_chain_means_buffer_too_small() {
    let mut b = cxl_device(v2_bytes(v2()));
    put32(&mut b, 16, 0);
    put32(&mut b, 0, 99);
    let e = auto(&b).unwrap_err();
    assert!(
        matches!(e, UapiError::CapsNotReturned { argsz: 99, .. }),
        "{e}"
    );
}

#[test]
fn chain_without_caps_flag() {
    let mut b = cxl_device(v2_bytes(v2()));
    put32(&mut b, 4, DEVICE_FLAGS_PCI);
    assert!(matches!(
        auto(&b),
        Err(UapiError::ChainWithoutCapsFlag { cap_offset: 24, .. })
    ));
}

#[test]
fn offset_into_header_or_past_end() {
    let mut b = cxl_device(v2_bytes(v2()));
    put32(&mut b, 16, 16);
    assert!(matches!(
        auto(&b),
        Err(UapiError::CapOffsetOutOfBounds { offset: 16, .. })
    ));
    let mut b = cxl_device(v2_bytes(v2()));
    put32(&mut b, 16, u32::MAX - 7);
    assert!(matches!(
        auto(&b),
        Err(UapiError::CapOffsetOutOfBounds { .. })
    ));
    // A next pointer whose header would straddle the end of the buffer.
    let mut b = device_answer(CXL_FLAGS, NUM_REGIONS, &[v2_bytes(v2())], 0);
    put32(&mut b, 24 + 4, 56);
    b.truncate(60);
    assert!(matches!(
        auto(&b),
        Err(UapiError::CapOffsetOutOfBounds { offset: 56, .. })
    ));
}

#[test]
fn misaligned_offset() {
    let mut b = device_answer(CXL_FLAGS, NUM_REGIONS, &[v2_bytes(v2())], 8);
    put32(&mut b, 16, 28);
    assert!(matches!(
        auto(&b),
        Err(UapiError::CapOffsetMisaligned { offset: 28, .. })
    ));
}

#[test]
fn loops_and_backward_links() {
    let mut b = device_answer(
        CXL_FLAGS,
        NUM_REGIONS,
        &[other_cap(3, 16), v2_bytes(v2())],
        0,
    );
    put32(&mut b, 40 + 4, 24);
    assert!(matches!(
        auto(&b),
        Err(UapiError::ChainLoop { offset: 24, .. })
    ));
    let mut b = device_answer(
        CXL_FLAGS,
        NUM_REGIONS,
        &[other_cap(3, 16), v2_bytes(v2())],
        0,
    );
    put32(&mut b, 24 + 4, 24);
    assert!(matches!(
        auto(&b),
        Err(UapiError::ChainLoop { offset: 24, .. })
    ));
    let mut b = device_answer(
        CXL_FLAGS,
        NUM_REGIONS,
        &[other_cap(3, 16), v2_bytes(v2())],
        0,
    );
    put32(&mut b, 16, 40);
    put32(&mut b, 40 + 4, 24);
    put32(&mut b, 24 + 4, 32);
    // 40 -> 24 goes backwards to an offset never visited.
    assert!(matches!(
        auto(&b),
        Err(UapiError::ChainBackwards {
            offset: 40,
            next: 24,
            ..
        })
    ));
}

#[test]
fn too_many_caps() {
    let caps: Vec<Vec<u8>> = (0..40).map(|_| other_cap(3, 8)).collect();
    let b = device_answer(DEVICE_FLAGS_PCI | DEVICE_FLAGS_CAPS, 9, &caps, 0);
    assert!(matches!(
        auto(&b),
        Err(UapiError::TooManyCaps { max: 32, .. })
    ));
}

#[test]
fn truncated_cxl_cap() {
    let mut cap = v2_bytes(v2());
    cap.truncate(24);
    let b = cxl_device(cap);
    assert!(matches!(
        auto(&b),
        Err(UapiError::TruncatedCap {
            id: 6,
            need: 32,
            have: 24,
            ..
        })
    ));
    // Forced v3 on a 32-byte v2 answer.
    let b = cxl_device(v2_bytes(v2()));
    assert!(matches!(
        parse_device_info(&b, RevisionChoice::Force(UapiRevision::V3)),
        Err(UapiError::TruncatedCap {
            need: 48,
            have: 32,
            ..
        })
    ));
}

#[test]
fn duplicate_cxl_cap() {
    let b = device_answer(CXL_FLAGS, NUM_REGIONS, &[v2_bytes(v2()), v2_bytes(v2())], 0);
    assert!(matches!(
        auto(&b),
        Err(UapiError::DuplicateCap {
            id: 6,
            first: 24,
            second: 56
        })
    ));
}

#[test]
fn unsupported_version() {
    let mut cap = v2_bytes(v2());
    cap[2] = 2;
    assert!(matches!(
        auto(&cxl_device(cap)),
        Err(UapiError::UnsupportedCapVersion {
            id: 6,
            version: 2,
            expected: 1
        })
    ));
}

#[test]
fn unknown_layouts() {
    // v2 fields but a 48-byte extent before another cap.
    let mut cap = v2_bytes(v2());
    cap.resize(48, 0);
    let b = device_answer(CXL_FLAGS, NUM_REGIONS, &[cap, other_cap(3, 8)], 0);
    assert!(matches!(
        auto(&b),
        Err(UapiError::UnknownLayout { extent: 48, .. })
    ));
    // v3 fields (zeros @24/@28) in a 32-byte slot.
    let mut cap = v3_bytes(v3());
    cap.truncate(32);
    let b = device_answer(CXL_FLAGS, NUM_REGIONS, &[cap, other_cap(3, 8)], 0);
    assert!(matches!(
        auto(&b),
        Err(UapiError::UnknownLayout {
            extent: 32,
            word24: 0,
            ..
        })
    ));
    // Neither: small indices where v2 expects >= 9, non-zero where v3 expects zero.
    let mut c = v2();
    c.dpa_region_index = 3;
    assert!(matches!(
        auto(&cxl_device(v2_bytes(c))),
        Err(UapiError::UnknownLayout { word24: 3, .. })
    ));
    // v3 with a non-zero LP64 hole is not auto-detected ...
    let mut c = v3();
    c.pad = 1;
    assert!(matches!(
        auto(&cxl_device(v3_bytes(c))),
        Err(UapiError::UnknownLayout { .. })
    ));
    // ... but a forced v3 decode tolerates it (the hole is not a field).
    let d = parse_device_info(
        &cxl_device(v3_bytes(c)),
        RevisionChoice::Force(UapiRevision::V3),
    );
    assert_eq!(d.unwrap().cxl.unwrap().revision, UapiRevision::V3);
}

#[test]
fn forced_v2_on_v3_answer_still_validated() {
    // Decoding v3 bytes as v2: the v3 `__resv`/hole read as region indices 0.
    let b = cxl_device(v3_bytes(v3()));
    let e = parse_device_info(&b, RevisionChoice::Force(UapiRevision::V2)).unwrap_err();
    assert!(
        matches!(
            e,
            UapiError::RegionIndexOutOfRange {
                role: RegionRole::Dpa,
                index: 0,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn cxl_flag_requires_pci_and_caps() {
    let b = device_answer(
        DEVICE_FLAGS_CXL | DEVICE_FLAGS_CAPS,
        NUM_REGIONS,
        &[v2_bytes(v2())],
        0,
    );
    assert!(matches!(
        auto(&b),
        Err(UapiError::CxlWithoutPciOrCaps { .. })
    ));
    // v4: CXL and PCI without CAPS (no capability at all) is a v4 device.
    let b = device_answer(DEVICE_FLAGS_CXL | DEVICE_FLAGS_PCI, NUM_REGIONS, &[], 0);
    let d = auto(&b).expect("v4 device");
    assert!(d.v4 && d.cxl.is_none());
    let b = device_answer(DEVICE_FLAGS_CXL, NUM_REGIONS, &[], 0);
    assert!(matches!(
        auto(&b),
        Err(UapiError::CxlWithoutPciOrCaps { .. })
    ));
}

#[test]
fn cxl_flag_without_cap() {
    // Auto: the v4 answer. Forced v2/v3: the capability those revisions always send is
    // missing.
    let b = device_answer(CXL_FLAGS, NUM_REGIONS, &[other_cap(3, 16)], 0);
    assert!(auto(&b).expect("v4").v4);
    for r in [UapiRevision::V2, UapiRevision::V3] {
        assert!(matches!(
            parse_device_info(&b, RevisionChoice::Force(r)),
            Err(UapiError::CxlCapMissing { flags: CXL_FLAGS })
        ));
    }
    assert!(
        parse_device_info(&b, RevisionChoice::Force(UapiRevision::V4))
            .expect("forced v4")
            .v4
    );
}

#[test]
fn forced_v4_refuses_a_cxl_capability() {
    let b = cxl_device(v3_bytes(v3()));
    assert!(matches!(
        parse_device_info(&b, RevisionChoice::Force(UapiRevision::V4)),
        Err(UapiError::CxlCapUnderV4 { offset: 24 })
    ));
    let d = auto(&b).expect("v3");
    assert!(!d.v4);
}

#[test]
fn cxl_cap_without_flag() {
    let flags = CXL_FLAGS & !DEVICE_FLAGS_CXL;
    let b = device_answer(flags, NUM_REGIONS, &[v2_bytes(v2())], 0);
    assert!(matches!(auto(&b), Err(UapiError::UnexpectedCxlCap { .. })));
}

#[test]
fn reserved_must_be_zero() {
    let mut c = v2();
    c.reserved = [0, 1, 0];
    assert!(matches!(
        auto(&cxl_device(v2_bytes(c))),
        Err(UapiError::ReservedNotZero {
            revision: UapiRevision::V2,
            offset: 9,
            value: 0x100
        })
    ));
    let mut c = v3();
    c.resv = 5;
    let e = parse_device_info(
        &cxl_device(v3_bytes(c)),
        RevisionChoice::Force(UapiRevision::V3),
    );
    assert!(matches!(
        e,
        Err(UapiError::ReservedNotZero {
            revision: UapiRevision::V3,
            offset: 24,
            value: 5
        })
    ));
}

#[test]
fn bar_index_out_of_range() {
    let mut c = v2();
    c.hdm_regs_bar_index = 6;
    assert!(matches!(
        auto(&cxl_device(v2_bytes(c))),
        Err(UapiError::BarIndexOutOfRange { bar: 6 })
    ));
    let mut c = v3();
    c.comp_reg_bar = 0x100;
    let e = parse_device_info(
        &cxl_device(v3_bytes(c)),
        RevisionChoice::Force(UapiRevision::V3),
    );
    assert!(matches!(
        e,
        Err(UapiError::BarIndexOutOfRange { bar: 0x100 })
    ));
}

#[test]
fn region_index_out_of_range() {
    let mut c = v2();
    c.comp_regs_region_index = NUM_REGIONS;
    assert!(matches!(
        auto(&cxl_device(v2_bytes(c))),
        Err(UapiError::RegionIndexOutOfRange {
            role: RegionRole::CompRegs,
            index: 11,
            num_regions: 11
        })
    ));
    let mut c = v3();
    c.hdm_region_idx = 7;
    assert!(matches!(
        auto(&cxl_device(v3_bytes(c))),
        Err(UapiError::RegionIndexOutOfRange {
            role: RegionRole::Dpa,
            index: 7,
            ..
        })
    ));
}

#[test]
fn region_indices_equal() {
    let mut c = v2();
    c.comp_regs_region_index = DPA_IDX;
    assert!(matches!(
        auto(&cxl_device(v2_bytes(c))),
        Err(UapiError::RegionIndicesEqual { index: 9 })
    ));
}

#[test]
fn v2_hdm_regs_offset_too_small() {
    let mut c = v2();
    c.hdm_regs_offset = 0xFFF;
    assert!(matches!(
        auto(&cxl_device(v2_bytes(c))),
        Err(UapiError::HdmRegsOffsetTooSmall { offset: 0xFFF })
    ));
    c.hdm_regs_offset = 0x1000;
    assert_eq!(
        auto(&cxl_device(v2_bytes(c)))
            .unwrap()
            .cxl
            .unwrap()
            .component_offset,
        0
    );
}

#[test]
fn v3_component_size_must_be_64k() {
    let mut c = v3();
    c.comp_reg_size = 0x8000;
    let e = auto(&cxl_device(v3_bytes(c))).unwrap_err();
    assert_eq!(e, UapiError::ComponentSizeInvalid { size: 0x8000 });
    assert!(e.to_string().contains("0x8000"));
}
