//! v4 detection and validation from the kernel's answers alone: the region scan
//! (`discover_v4`), the geometry capability, the v4 layout rules, and one broken answer
//! per v4 error.

mod uapi_common;

use cxl_passthrough::uapi::wire::*;
use cxl_passthrough::uapi::*;
use uapi_common::*;

struct V4 {
    dev: DeviceInfo,
    regions: Vec<RegionInfo>,
    bar: RegionInfo,
}

impl V4 {
    fn new() -> Self {
        Self::with(
            dpa_answer(DPA_SIZE),
            v4_comp_answer(COMP_IDX, V4_COMP_SIZE, geometry(u32::from(BAR), V4_HDM_OFF)),
        )
    }
    fn with(dpa: Vec<u8>, comp: Vec<u8>) -> Self {
        V4 {
            dev: parse_device_info(&v4_device(), RevisionChoice::Auto).expect("device"),
            regions: vec![
                parse_region_info(&dpa, DPA_IDX).expect("dpa"),
                parse_region_info(&comp, COMP_IDX).expect("comp"),
            ],
            bar: parse_region_info(&bar_answer(&v4_areas()), u32::from(BAR)).expect("bar"),
        }
    }
    fn layout(&self) -> Result<CxlLayout, UapiError> {
        let mut dev = self.dev;
        dev.cxl = Some(discover_v4(&dev, &self.regions)?);
        validate_layout(&dev, &self.bar, &self.regions[0], &self.regions[1])
    }
}

#[test]
fn v4_is_detected_and_laid_out() {
    let l = V4::new().layout().expect("v4 layout");
    assert_eq!(l.revision, UapiRevision::V4);
    assert_eq!(l.component.bar, BAR);
    assert_eq!(l.component.offset, COMP_OFF);
    assert_eq!(l.comp_regs.block_offset, 0x1200);
    assert_eq!(l.comp_regs.size, V4_COMP_SIZE);
    assert_eq!(l.dpa.index, DPA_IDX);
    assert!(l.dpa.mmap);
    assert_eq!(l.bar.sparse, v4_areas());
}

#[test]
fn v4_regions_are_found_in_any_order_and_foreign_regions_ignored() {
    let mut s = V4::new();
    s.regions.reverse();
    let foreign = region_answer(
        11,
        RW,
        0x1000,
        &[encode_type_cap(0, REGION_TYPE_CXL, 7).to_vec()],
    );
    s.regions
        .push(parse_region_info(&foreign, 11).expect("foreign"));
    s.dev.num_regions = 12;
    let info = discover_v4(&s.dev, &s.regions).expect("found");
    assert_eq!(
        (info.dpa_region_index, info.comp_regs_region_index),
        (DPA_IDX, COMP_IDX)
    );
}

#[test]
fn every_malformed_v4_answer_is_its_own_error() {
    let geo = || geometry(u32::from(BAR), V4_HDM_OFF);
    // No memory region.
    let mut s = V4::new();
    s.regions.remove(0);
    assert!(matches!(
        discover_v4(&s.dev, &s.regions),
        Err(UapiError::CxlRegionMissing {
            role: RegionRole::Dpa,
            ..
        })
    ));
    // Two COMP_REGS regions.
    let mut s = V4::new();
    s.regions
        .push(parse_region_info(&v4_comp_answer(11, V4_COMP_SIZE, geo()), 11).expect("second"));
    assert!(matches!(
        discover_v4(&s.dev, &s.regions),
        Err(UapiError::DuplicateCxlRegion {
            role: RegionRole::CompRegs,
            first: COMP_IDX,
            second: 11
        })
    ));
    // COMP_REGS without geometry.
    let s = V4::with(dpa_answer(DPA_SIZE), comp_answer(V4_COMP_SIZE));
    assert!(matches!(
        s.layout(),
        Err(UapiError::GeometryCapMissing { index: COMP_IDX })
    ));
    // Geometry on the memory region.
    let dpa = region_answer(
        DPA_IDX,
        RW | REGION_FLAG_MMAP,
        DPA_SIZE,
        &[
            encode_type_cap(0, REGION_TYPE_CXL, REGION_SUBTYPE_CXL_DPA).to_vec(),
            geo(),
        ],
    );
    let s = V4::with(dpa, v4_comp_answer(COMP_IDX, V4_COMP_SIZE, geo()));
    assert!(matches!(
        s.layout(),
        Err(UapiError::GeometryCapOnWrongRegion { index: DPA_IDX })
    ));
    // Reserved word, BAR index, misplaced HDM block.
    let mut bad = geo();
    put32(&mut bad, 12, 1);
    let s = V4::with(
        dpa_answer(DPA_SIZE),
        v4_comp_answer(COMP_IDX, V4_COMP_SIZE, bad),
    );
    assert!(matches!(
        s.layout(),
        Err(UapiError::ReservedNotZero {
            revision: UapiRevision::V4,
            offset: 12,
            value: 1
        })
    ));
    let s = V4::with(
        dpa_answer(DPA_SIZE),
        v4_comp_answer(COMP_IDX, V4_COMP_SIZE, geometry(6, V4_HDM_OFF)),
    );
    assert!(matches!(
        s.layout(),
        Err(UapiError::BarIndexOutOfRange { bar: 6 })
    ));
    for (off, size) in [
        (COMP_OFF + 0x800, V4_COMP_SIZE),
        (COMP_OFF + 0xFFF0, V4_COMP_SIZE),
    ] {
        let s = V4::with(
            dpa_answer(DPA_SIZE),
            v4_comp_answer(COMP_IDX, size, geometry(u32::from(BAR), off)),
        );
        assert!(
            matches!(s.layout(), Err(UapiError::HdmBlockMisplaced { .. })),
            "{off:#x}"
        );
    }
    // COMP_REGS size: below one decoder, not dwords.
    for size in [0x20, 0x32] {
        let s = V4::with(dpa_answer(DPA_SIZE), v4_comp_answer(COMP_IDX, size, geo()));
        assert!(
            matches!(
                s.layout(),
                Err(UapiError::CompRegsSizeInvalid {
                    revision: UapiRevision::V4,
                    ..
                })
            ),
            "{size:#x}"
        );
    }
    // A truncated geometry capability and a wrong version.
    let mut short = geo();
    short.truncate(16);
    let b = v4_comp_answer(COMP_IDX, V4_COMP_SIZE, short);
    assert!(matches!(
        parse_region_info(&b, COMP_IDX),
        Err(UapiError::TruncatedCap {
            id: REGION_CAP_CXL_COMP_REGS,
            ..
        })
    ));
    // The header is id u16 @0, version u16 @2, next u32 @4.
    let mut v2 = geo();
    v2[2..4].copy_from_slice(&2u16.to_le_bytes());
    assert!(matches!(
        parse_region_info(&v4_comp_answer(COMP_IDX, V4_COMP_SIZE, v2), COMP_IDX),
        Err(UapiError::UnsupportedCapVersion {
            id: REGION_CAP_CXL_COMP_REGS,
            version: 2,
            ..
        })
    ));
    // A region index past num_regions.
    let mut s = V4::new();
    s.dev.num_regions = COMP_IDX;
    assert!(matches!(
        discover_v4(&s.dev, &s.regions),
        Err(UapiError::RegionIndexOutOfRange {
            role: RegionRole::CompRegs,
            ..
        })
    ));
    // Not a v4 device.
    let d = parse_device_info(&cxl_device(v3_bytes(v3())), RevisionChoice::Auto).expect("v3");
    assert!(matches!(
        discover_v4(&d, &s.regions),
        Err(UapiError::NotCxl)
    ));
}

#[test]
fn v4_sparse_areas_may_not_touch_the_hdm_page() {
    let mut s = V4::new();
    // The v3 areas (around the whole block) are fine on v4 too.
    s.bar = parse_region_info(&bar_answer(&topo_c()), u32::from(BAR)).expect("bar");
    assert!(s.layout().is_ok());
    // An area over the HDM page is not.
    let over = [SparseArea {
        offset: V4_HDM_OFF & !0xFFF,
        size: 0x1000,
    }];
    s.bar = parse_region_info(&bar_answer(&over), u32::from(BAR)).expect("bar");
    assert!(matches!(
        s.layout(),
        Err(UapiError::SparseOverlapsComponent { .. })
    ));
}
