//! `validate_layout`: the cross-checked layout, and one broken answer per error.

mod uapi_common;

use cxl_passthrough::uapi::wire::*;
use cxl_passthrough::uapi::*;
use uapi_common::*;

struct Set {
    dev: DeviceInfo,
    bar: RegionInfo,
    dpa: RegionInfo,
    comp: RegionInfo,
}

impl Set {
    fn v2() -> Self {
        Self::build(v2_bytes(v2()), 0x230)
    }
    fn v3() -> Self {
        Self::build(v3_bytes(v3()), 0x1_0000)
    }
    fn build(cap: Vec<u8>, comp_size: u64) -> Self {
        Set {
            dev: parse_device_info(&cxl_device(cap), RevisionChoice::Auto).expect("device"),
            bar: parse_region_info(&bar_answer(&topo_c()), u32::from(BAR)).expect("bar"),
            dpa: parse_region_info(&dpa_answer(DPA_SIZE), DPA_IDX).expect("dpa"),
            comp: parse_region_info(&comp_answer(comp_size), COMP_IDX).expect("comp"),
        }
    }
    fn check(&self) -> Result<CxlLayout, UapiError> {
        validate_layout(&self.dev, &self.bar, &self.dpa, &self.comp)
    }
    fn both() -> [Set; 2] {
        [Set::v2(), Set::v3()]
    }
}

#[test]
fn v2_layout() {
    let l = Set::v2().check().unwrap();
    assert_eq!(l.revision, UapiRevision::V2);
    assert!(l.firmware_committed);
    assert_eq!(l.cache_capable, Some(true));
    assert_eq!(
        l.component,
        ComponentBlock {
            bar: BAR,
            offset: COMP_OFF,
            size: 0x1_0000
        }
    );
    assert_eq!(l.bar.size, BAR_SIZE);
    assert_eq!(l.bar.file_offset, 2 << 40);
    assert_eq!(l.bar.sparse, topo_c());
    assert_eq!(
        l.dpa,
        DpaLayout {
            index: DPA_IDX,
            size: DPA_SIZE,
            file_offset: 9 << 40,
            mmap: true
        }
    );
    assert_eq!(
        l.comp_regs,
        CompRegsLayout {
            index: COMP_IDX,
            size: 0x230,
            file_offset: 10 << 40,
            block_offset: 0x1000
        }
    );
}

#[test]
fn v3_layout() {
    let l = Set::v3().check().unwrap();
    assert_eq!(l.revision, UapiRevision::V3);
    assert_eq!(l.cache_capable, None);
    assert_eq!(l.comp_regs.size, 0x1_0000);
    assert_eq!(l.comp_regs.block_offset, 0);
}

#[test]
fn sparse_areas_are_sorted_and_no_areas_is_fine() {
    let mut s = Set::v2();
    let mut rev = topo_c();
    rev.reverse();
    s.bar = parse_region_info(&bar_answer(&rev), u32::from(BAR)).unwrap();
    assert_eq!(s.check().unwrap().bar.sparse, topo_c());
    s.bar = parse_region_info(&bar_answer(&[]), u32::from(BAR)).unwrap();
    assert!(s.check().unwrap().bar.sparse.is_empty());
}

#[test]
fn dpa_without_mmap_is_accepted() {
    let mut s = Set::v2();
    s.dpa.flags = s.dpa.flags.with_mmap(false);
    assert!(!s.check().unwrap().dpa.mmap);
}

#[test]
fn not_cxl() {
    let mut s = Set::v2();
    s.dev.cxl = None;
    assert_eq!(s.check(), Err(UapiError::NotCxl));
}

#[test]
fn wrong_region_given() {
    let mut s = Set::v2();
    std::mem::swap(&mut s.dpa, &mut s.comp);
    assert!(matches!(
        s.check(),
        Err(UapiError::WrongRegionGiven {
            role: RegionRole::Dpa,
            expected: 9,
            got: 10
        })
    ));
    let mut s = Set::v3();
    s.bar.index = 0;
    assert!(matches!(
        s.check(),
        Err(UapiError::WrongRegionGiven {
            role: RegionRole::ComponentBar,
            ..
        })
    ));
}

#[test]
fn wrong_region_type() {
    for mut s in Set::both() {
        s.dpa.region_type = Some((REGION_TYPE_CXL, REGION_SUBTYPE_CXL_COMP_REGS));
        assert!(matches!(
            s.check(),
            Err(UapiError::WrongRegionType {
                role: RegionRole::Dpa,
                ..
            })
        ));
    }
    let mut s = Set::v2();
    s.comp.region_type = None;
    let e = s.check().unwrap_err();
    assert_eq!(
        e,
        UapiError::WrongRegionType {
            role: RegionRole::CompRegs,
            expected: (REGION_TYPE_CXL, 2),
            found: None
        }
    );
    assert!(e.to_string().contains("0x80001e98"));
}

#[test]
fn zero_sized_regions() {
    for mut s in Set::both() {
        s.dpa.size = 0;
        assert_eq!(
            s.check(),
            Err(UapiError::ZeroSizedRegion {
                role: RegionRole::Dpa,
                index: 9
            })
        );
    }
    let mut s = Set::v2();
    s.comp.size = 0;
    assert!(matches!(
        s.check(),
        Err(UapiError::ZeroSizedRegion {
            role: RegionRole::CompRegs,
            ..
        })
    ));
    let mut s = Set::v3();
    s.bar.size = 0;
    assert!(matches!(
        s.check(),
        Err(UapiError::ZeroSizedRegion {
            role: RegionRole::ComponentBar,
            ..
        })
    ));
}

#[test]
fn dpa_size_not_256m_multiple() {
    for mut s in Set::both() {
        s.dpa.size = DPA_SIZE + 0x1000;
        assert_eq!(
            s.check(),
            Err(UapiError::DpaSizeUnaligned {
                size: DPA_SIZE + 0x1000
            })
        );
    }
}

#[test]
fn missing_rw_flags() {
    let mut s = Set::v2();
    s.comp.flags = s.comp.flags.with_write(false);
    assert!(matches!(
        s.check(),
        Err(UapiError::RegionFlagsMissing {
            role: RegionRole::CompRegs,
            required: 3,
            ..
        })
    ));
}

#[test]
fn comp_regs_must_not_be_mappable() {
    for mut s in Set::both() {
        s.comp.flags = s.comp.flags.with_mmap(true);
        assert!(matches!(s.check(), Err(UapiError::CompRegsMappable { .. })));
    }
}

#[test]
fn comp_regs_size_rules() {
    for (size, ok) in [
        (0x230, true),
        (0xF000, true),
        (0x232, false),
        (0xF004, false),
        (0x1_0000, false),
    ] {
        let mut s = Set::v2();
        s.comp.size = size;
        let r = s.check();
        assert_eq!(r.is_ok(), ok, "v2 size {size:#x}: {r:?}");
        if !ok {
            assert!(matches!(
                r,
                Err(UapiError::CompRegsSizeInvalid {
                    revision: UapiRevision::V2,
                    ..
                })
            ));
        }
    }
    let mut s = Set::v3();
    s.comp.size = 0x230;
    assert!(matches!(
        s.check(),
        Err(UapiError::CompRegsSizeInvalid {
            revision: UapiRevision::V3,
            size: 0x230,
            ..
        })
    ));
}

#[test]
fn region_offset_overflow() {
    let mut s = Set::v2();
    s.dpa.offset = u64::MAX - DPA_SIZE + 2;
    assert!(matches!(
        s.check(),
        Err(UapiError::RegionOffsetOverflow {
            role: RegionRole::Dpa,
            ..
        })
    ));
}

#[test]
fn component_block_outside_bar() {
    let mut s = Set::v2();
    s.bar.size = COMP_OFF + 0xFFFF;
    s.bar.sparse = Some(vec![SparseArea {
        offset: 0,
        size: COMP_OFF,
    }]);
    assert!(matches!(
        s.check(),
        Err(UapiError::ComponentOutsideBar { .. })
    ));
    // Overflow-safe: a block near u64::MAX.
    let mut c = v3();
    c.comp_reg_offset = u64::MAX - 0x100;
    let mut s = Set::build(v3_bytes(c), 0x1_0000);
    s.bar.sparse = None;
    s.bar.flags = s.bar.flags.with_mmap(false);
    assert!(matches!(
        s.check(),
        Err(UapiError::ComponentOutsideBar { .. })
    ));
}

#[test]
fn mmap_without_sparse_exposes_the_block() {
    let mut s = Set::v3();
    s.bar.sparse = None;
    assert_eq!(s.check(), Err(UapiError::ComponentBlockMappable));
}

fn with_areas(mut s: Set, areas: &[SparseArea]) -> Result<CxlLayout, UapiError> {
    s.bar.sparse = Some(areas.to_vec());
    s.check()
}

fn area(offset: u64, size: u64) -> SparseArea {
    SparseArea { offset, size }
}

#[test]
fn sparse_area_checks() {
    for s in Set::both() {
        assert!(matches!(
            with_areas(s, &[area(0, 0)]),
            Err(UapiError::SparseAreaEmpty { offset: 0 })
        ));
    }
    assert!(matches!(
        with_areas(Set::v2(), &[area(0x3_0000, 0x1_0001)]),
        Err(UapiError::SparseAreaOutsideBar { .. })
    ));
    assert!(matches!(
        with_areas(Set::v2(), &[area(u64::MAX, 2)]),
        Err(UapiError::SparseAreaOutsideBar { .. })
    ));
    assert!(matches!(
        with_areas(
            Set::v2(),
            &[area(0x2_0000, 0x1_0000), area(0x2_8000, 0x1000)]
        ),
        Err(UapiError::SparseAreasOverlap {
            a_offset: 0x2_0000,
            b_offset: 0x2_8000,
            ..
        })
    ));
    for s in Set::both() {
        assert!(matches!(
            with_areas(s, &[area(0, COMP_OFF + 4)]),
            Err(UapiError::SparseOverlapsComponent {
                carve_start: COMP_OFF,
                carve_end: 0x2_0000,
                ..
            })
        ));
    }
}

#[test]
fn v3_carve_is_page_rounded_v2_is_exact() {
    // Component block at 0x10800 (not page aligned): v2 areas may touch the exact block,
    // v3 areas must stay outside the page-rounded window [0x10000, 0x21000).
    let off = 0x1_0800;
    let areas = [
        area(0, off),
        area(off + 0x1_0000, BAR_SIZE - off - 0x1_0000),
    ];
    let mut c2 = v2();
    c2.hdm_regs_offset = off + 0x1000;
    assert!(with_areas(Set::build(v2_bytes(c2), 0x230), &areas).is_ok());
    let mut c3 = v3();
    c3.comp_reg_offset = off;
    assert_eq!(
        with_areas(Set::build(v3_bytes(c3), 0x1_0000), &areas),
        Err(UapiError::SparseOverlapsComponent {
            offset: 0,
            size: off,
            carve_start: 0x1_0000,
            carve_end: 0x2_1000
        })
    );
    let rounded = [area(0, 0x1_0000), area(0x2_1000, BAR_SIZE - 0x2_1000)];
    assert!(with_areas(Set::build(v3_bytes(c3), 0x1_0000), &rounded).is_ok());
    // With a 64 KiB kernel page the carve grows to [0x10000, 0x30000).
    let mut s = Set::build(v3_bytes(c3), 0x1_0000);
    s.bar.sparse = Some(rounded.to_vec());
    assert!(matches!(
        validate_layout_with_page_size(&s.dev, &s.bar, &s.dpa, &s.comp, 0x1_0000),
        Err(UapiError::SparseOverlapsComponent {
            carve_end: 0x3_0000,
            ..
        })
    ));
}
