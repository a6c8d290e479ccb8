//! `parse_region_info`: flags, type and sparse-mmap capabilities, hostile answers.

mod uapi_common;

use cxl_passthrough::uapi::wire::*;
use cxl_passthrough::uapi::*;
use uapi_common::*;

#[test]
fn bar_with_sparse_areas() {
    let r = parse_region_info(&bar_answer(&topo_c()), u32::from(BAR)).unwrap();
    assert_eq!(r.index, u32::from(BAR));
    assert!(r.flags.read() && r.flags.write() && r.flags.mmap() && r.flags.caps());
    assert_eq!(r.flags.unknown(), 0);
    assert_eq!(r.size, BAR_SIZE);
    assert_eq!(r.offset, 2 << 40);
    assert_eq!(r.region_type, None);
    assert_eq!(r.sparse, Some(topo_c()));
}

#[test]
fn plain_region_without_caps() {
    let r = parse_region_info(&bar_answer(&[]), u32::from(BAR)).unwrap();
    assert!(!r.flags.caps() && !r.flags.mmap());
    assert_eq!((r.region_type, r.sparse), (None, None));
}

#[test]
fn typed_region_with_type_and_sparse_in_any_order() {
    let ty = encode_type_cap(0, REGION_TYPE_CXL, REGION_SUBTYPE_CXL_DPA).to_vec();
    let sp = encode_sparse_cap(
        0,
        &[SparseArea {
            offset: 0,
            size: 0x1000,
        }],
    );
    for caps in [vec![ty.clone(), sp.clone()], vec![sp.clone(), ty.clone()]] {
        let b = region_answer(DPA_IDX, RW | REGION_FLAG_MMAP, DPA_SIZE, &caps);
        let r = parse_region_info(&b, DPA_IDX).unwrap();
        assert_eq!(
            r.region_type,
            Some((REGION_TYPE_CXL, REGION_SUBTYPE_CXL_DPA))
        );
        assert_eq!(
            r.sparse.as_deref(),
            Some(
                &[SparseArea {
                    offset: 0,
                    size: 0x1000
                }][..]
            )
        );
    }
}

#[test]
fn empty_sparse_cap_is_allowed_by_parser() {
    let b = region_answer(
        u32::from(BAR),
        RW | REGION_FLAG_MMAP,
        BAR_SIZE,
        &[encode_sparse_cap(0, &[])],
    );
    assert_eq!(
        parse_region_info(&b, u32::from(BAR)).unwrap().sparse,
        Some(vec![])
    );
}

#[test]
fn short_header() {
    let b = bar_answer(&[]);
    assert!(matches!(
        parse_region_info(&b[..31], u32::from(BAR)),
        Err(UapiError::ShortHeader {
            answer: Answer::RegionInfo,
            len: 31,
            need: 32
        })
    ));
}

#[test]
fn index_mismatch() {
    assert_eq!(
        parse_region_info(&dpa_answer(DPA_SIZE), COMP_IDX),
        Err(UapiError::RegionIndexMismatch {
            asked: COMP_IDX,
            answered: DPA_IDX
        })
    );
}

#[test]
fn caps_flag_consistency() {
    let mut b = dpa_answer(DPA_SIZE);
    put32(&mut b, 12, 0);
    assert!(matches!(
        parse_region_info(&b, DPA_IDX),
        Err(UapiError::CapsNotReturned {
            answer: Answer::RegionInfo,
            ..
        })
    ));
    let mut b = dpa_answer(DPA_SIZE);
    put32(&mut b, 4, RW);
    assert!(matches!(
        parse_region_info(&b, DPA_IDX),
        Err(UapiError::ChainWithoutCapsFlag { cap_offset: 32, .. })
    ));
}

#[test]
fn cap_offset_inside_header() {
    let mut b = dpa_answer(DPA_SIZE);
    put32(&mut b, 12, 24);
    assert!(matches!(
        parse_region_info(&b, DPA_IDX),
        Err(UapiError::CapOffsetOutOfBounds {
            offset: 24,
            min: 32,
            ..
        })
    ));
}

#[test]
fn hostile_sparse_count_is_bounded_by_the_buffer() {
    let mut b = bar_answer(&topo_c());
    put32(&mut b, 32 + 8, u32::MAX);
    let e = parse_region_info(&b, u32::from(BAR)).unwrap_err();
    assert!(
        matches!(
            e,
            UapiError::TruncatedCap {
                id: 1,
                have: 48,
                ..
            }
        ),
        "{e}"
    );
    // One more area than the bytes hold.
    let mut b = bar_answer(&topo_c());
    put32(&mut b, 32 + 8, 3);
    assert!(matches!(
        parse_region_info(&b, u32::from(BAR)),
        Err(UapiError::TruncatedCap {
            need: 64,
            have: 48,
            ..
        })
    ));
}

#[test]
fn truncated_type_cap() {
    let mut ty = encode_type_cap(0, REGION_TYPE_CXL, 1).to_vec();
    ty.truncate(12);
    let b = region_answer(DPA_IDX, RW, DPA_SIZE, &[ty]);
    assert!(matches!(
        parse_region_info(&b, DPA_IDX),
        Err(UapiError::TruncatedCap {
            id: 2,
            need: 16,
            have: 12,
            ..
        })
    ));
}

#[test]
fn duplicate_and_versioned_caps() {
    let ty = encode_type_cap(0, REGION_TYPE_CXL, 1).to_vec();
    let b = region_answer(DPA_IDX, RW, DPA_SIZE, &[ty.clone(), ty.clone()]);
    assert!(matches!(
        parse_region_info(&b, DPA_IDX),
        Err(UapiError::DuplicateCap {
            id: 2,
            first: 32,
            second: 48
        })
    ));
    let mut sp = encode_sparse_cap(0, &topo_c());
    sp[2] = 9;
    let b = region_answer(u32::from(BAR), RW | REGION_FLAG_MMAP, BAR_SIZE, &[sp]);
    assert!(matches!(
        parse_region_info(&b, u32::from(BAR)),
        Err(UapiError::UnsupportedCapVersion {
            id: 1,
            version: 9,
            expected: 1
        })
    ));
}

#[test]
fn sparse_requires_mmap() {
    let b = region_answer(
        u32::from(BAR),
        RW,
        BAR_SIZE,
        &[encode_sparse_cap(0, &topo_c())],
    );
    assert_eq!(
        parse_region_info(&b, u32::from(BAR)),
        Err(UapiError::SparseWithoutMmap {
            index: u32::from(BAR)
        })
    );
}

#[test]
fn region_chain_loop() {
    let ty = encode_type_cap(0, REGION_TYPE_CXL, 1).to_vec();
    let mut b = region_answer(DPA_IDX, RW, DPA_SIZE, &[ty]);
    put32(&mut b, 32 + 4, 32);
    assert!(matches!(
        parse_region_info(&b, DPA_IDX),
        Err(UapiError::ChainLoop {
            answer: Answer::RegionInfo,
            offset: 32
        })
    ));
}
