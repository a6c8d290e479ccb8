//! Cross-validation of the device info and the three CXL-relevant region infos into
//! the layout the runtime consumes.

use super::device::{CxlInfo, DeviceInfo, RawCxlCap, UapiRevision};
use super::error::{RegionRole, UapiError};
use super::region::{RegionFlags, RegionInfo};
use super::wire::{
    REGION_SUBTYPE_CXL_COMP_REGS, REGION_SUBTYPE_CXL_DPA, REGION_TYPE_CXL, SparseArea,
};
use crate::regs::component::{CM_OFFSET, COMPONENT_BLOCK_SIZE};
use crate::regs::hdm::{HDM_GRANULE, hdm_block_size};

/// Smallest kernel page size; the v3 carve is checked against this rounding.
pub const MIN_PAGE_SIZE: u64 = 4096;
/// COMP_REGS accesses are dwords: its size must be a multiple of this.
pub const COMP_REGS_ACCESS: u64 = 4;
/// Largest v2 COMP_REGS size: the CXL.cache/mem area ends with the component block.
pub const V2_COMP_REGS_MAX: u64 = COMPONENT_BLOCK_SIZE - CM_OFFSET;

/// The component register block inside its BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ComponentBlock {
    /// BAR index.
    pub bar: u8,
    /// BAR-relative start of the block.
    pub offset: u64,
    /// Block size (0x10000).
    pub size: u64,
}

/// The component BAR as the kernel exposes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentBar {
    /// VFIO region index (= BAR index).
    pub index: u32,
    /// BAR size.
    pub size: u64,
    /// File offset of the BAR in the device fd.
    pub file_offset: u64,
    /// Region flags.
    pub flags: RegionFlags,
    /// Mappable areas, sorted by offset (empty: nothing may be mmap'ed).
    pub sparse: Vec<SparseArea>,
}

/// The DPA / HDM memory region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DpaLayout {
    /// VFIO region index.
    pub index: u32,
    /// Size (multiple of 256 MiB).
    pub size: u64,
    /// File offset in the device fd.
    pub file_offset: u64,
    /// Whether the kernel allows mmap (BOS kernels withheld it for a while).
    pub mmap: bool,
}

/// The COMP_REGS region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompRegsLayout {
    /// VFIO region index.
    pub index: u32,
    /// Size in bytes.
    pub size: u64,
    /// File offset in the device fd.
    pub file_offset: u64,
    /// Offset inside the component block that COMP_REGS offset 0 stands for
    /// (v2: 0x1000, the CXL.cache/mem base; v3: 0, the block start; v4: the HDM block).
    pub block_offset: u64,
}

/// Validated, revision-independent facts about a CXL device's regions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CxlLayout {
    /// UAPI revision.
    pub revision: UapiRevision,
    /// Decoder 0 committed by firmware.
    pub firmware_committed: bool,
    /// CXL.cache capable (v2 only).
    pub cache_capable: Option<bool>,
    /// Component block placement.
    pub component: ComponentBlock,
    /// Component BAR.
    pub bar: ComponentBar,
    /// DPA region.
    pub dpa: DpaLayout,
    /// COMP_REGS region.
    pub comp_regs: CompRegsLayout,
}

/// [`validate_layout_with_page_size`] with the smallest page size (4 KiB).
pub fn validate_layout(
    dev: &DeviceInfo,
    bar: &RegionInfo,
    dpa: &RegionInfo,
    comp: &RegionInfo,
) -> Result<CxlLayout, UapiError> {
    validate_layout_with_page_size(dev, bar, dpa, comp, MIN_PAGE_SIZE)
}

/// Cross-checks the device info with the component BAR, DPA and COMP_REGS region infos.
///
/// `page_size` is the host page size the v3 kernel rounds its sparse-mmap carve to (a
/// value that is not a power of two is replaced by [`MIN_PAGE_SIZE`]).
pub fn validate_layout_with_page_size(
    dev: &DeviceInfo,
    bar: &RegionInfo,
    dpa: &RegionInfo,
    comp: &RegionInfo,
    page_size: u64,
) -> Result<CxlLayout, UapiError> {
    let cxl = dev.cxl.as_ref().ok_or(UapiError::NotCxl)?;
    check_identity(cxl, bar, dpa, comp)?;
    for (role, r) in [
        (RegionRole::ComponentBar, bar),
        (RegionRole::Dpa, dpa),
        (RegionRole::CompRegs, comp),
    ] {
        check_common(role, r)?;
    }
    check_dpa(dpa)?;
    check_comp_regs(cxl.revision, comp)?;
    let component = ComponentBlock {
        bar: cxl.component_bar,
        offset: cxl.component_offset,
        size: cxl.component_size,
    };
    let block_end = component
        .offset
        .checked_add(component.size)
        .filter(|end| *end <= bar.size)
        .ok_or(UapiError::ComponentOutsideBar {
            offset: component.offset,
            size: component.size,
            bar_size: bar.size,
        })?;
    let page = if page_size.is_power_of_two() {
        page_size
    } else {
        MIN_PAGE_SIZE
    };
    let round = |lo: u64, hi: u64| {
        (
            lo & !(page - 1),
            hi.checked_next_multiple_of(page).unwrap_or(u64::MAX),
        )
    };
    let block_offset = comp_regs_block_offset(cxl, comp.size)?;
    let carve = match cxl.revision {
        UapiRevision::V2 => (component.offset, block_end),
        UapiRevision::V3 => round(component.offset, block_end),
        // v4 excludes only the HDM block (spec v4 §2.4), page-rounded.
        UapiRevision::V4 => {
            let hdm = component.offset + block_offset;
            round(hdm, hdm.saturating_add(comp.size))
        }
    };
    let sparse = check_sparse(bar, carve)?;
    Ok(CxlLayout {
        revision: cxl.revision,
        firmware_committed: cxl.firmware_committed,
        cache_capable: cxl.cache_capable,
        component,
        bar: ComponentBar {
            index: bar.index,
            size: bar.size,
            file_offset: bar.offset,
            flags: bar.flags,
            sparse,
        },
        dpa: DpaLayout {
            index: dpa.index,
            size: dpa.size,
            file_offset: dpa.offset,
            mmap: dpa.flags.mmap(),
        },
        comp_regs: CompRegsLayout {
            index: comp.index,
            size: comp.size,
            file_offset: comp.offset,
            block_offset,
        },
    })
}

/// What COMP_REGS offset 0 is inside the component block: v2 the CXL.cache/mem base,
/// v3 the block start, v4 the HDM block (geometry capability offset − block offset).
fn comp_regs_block_offset(cxl: &CxlInfo, comp_size: u64) -> Result<u64, UapiError> {
    match cxl.raw {
        RawCxlCap::V2(_) => Ok(CM_OFFSET),
        RawCxlCap::V3(_) => Ok(0),
        RawCxlCap::V4(geo) => geo
            .offset
            .checked_sub(cxl.component_offset)
            .filter(|rel| *rel >= CM_OFFSET && rel.saturating_add(comp_size) <= cxl.component_size)
            .ok_or(UapiError::HdmBlockMisplaced {
                offset: geo.offset,
                size: comp_size,
            }),
    }
}

fn check_identity(
    cxl: &CxlInfo,
    bar: &RegionInfo,
    dpa: &RegionInfo,
    comp: &RegionInfo,
) -> Result<(), UapiError> {
    for (role, expected, got) in [
        (
            RegionRole::ComponentBar,
            u32::from(cxl.component_bar),
            bar.index,
        ),
        (RegionRole::Dpa, cxl.dpa_region_index, dpa.index),
        (RegionRole::CompRegs, cxl.comp_regs_region_index, comp.index),
    ] {
        if expected != got {
            return Err(UapiError::WrongRegionGiven {
                role,
                expected,
                got,
            });
        }
    }
    for (role, r, subtype) in [
        (RegionRole::Dpa, dpa, REGION_SUBTYPE_CXL_DPA),
        (RegionRole::CompRegs, comp, REGION_SUBTYPE_CXL_COMP_REGS),
    ] {
        if r.region_type != Some((REGION_TYPE_CXL, subtype)) {
            return Err(UapiError::WrongRegionType {
                role,
                expected: (REGION_TYPE_CXL, subtype),
                found: r.region_type,
            });
        }
    }
    Ok(())
}

fn check_common(role: RegionRole, r: &RegionInfo) -> Result<(), UapiError> {
    if r.size == 0 {
        return Err(UapiError::ZeroSizedRegion {
            role,
            index: r.index,
        });
    }
    if r.offset.checked_add(r.size).is_none() {
        return Err(UapiError::RegionOffsetOverflow {
            role,
            offset: r.offset,
            size: r.size,
        });
    }
    let rw = RegionFlags::new().with_read(true).with_write(true);
    if r.flags.into_bits() & rw.into_bits() != rw.into_bits() {
        return Err(UapiError::RegionFlagsMissing {
            role,
            flags: r.flags.into_bits(),
            required: rw.into_bits(),
        });
    }
    Ok(())
}

fn check_dpa(dpa: &RegionInfo) -> Result<(), UapiError> {
    if !dpa.size.is_multiple_of(HDM_GRANULE) {
        return Err(UapiError::DpaSizeUnaligned { size: dpa.size });
    }
    Ok(())
}

fn check_comp_regs(revision: UapiRevision, comp: &RegionInfo) -> Result<(), UapiError> {
    if comp.flags.mmap() {
        return Err(UapiError::CompRegsMappable {
            flags: comp.flags.into_bits(),
        });
    }
    let broken = match revision {
        UapiRevision::V2 if !comp.size.is_multiple_of(COMP_REGS_ACCESS) => {
            Some("not a multiple of 4")
        }
        UapiRevision::V2 if comp.size > V2_COMP_REGS_MAX => {
            Some("beyond the end of the component block (> 0xF000)")
        }
        UapiRevision::V3 if comp.size != COMPONENT_BLOCK_SIZE => Some("must be 0x10000"),
        UapiRevision::V4 if !comp.size.is_multiple_of(COMP_REGS_ACCESS) => {
            Some("not a multiple of 4")
        }
        UapiRevision::V4 if comp.size < hdm_block_size(1) => {
            Some("smaller than an HDM block with one decoder (0x30)")
        }
        _ => None,
    };
    match broken {
        Some(rule) => Err(UapiError::CompRegsSizeInvalid {
            revision,
            size: comp.size,
            rule,
        }),
        None => Ok(()),
    }
}

/// Checks the BAR's sparse areas against the BAR and the excluded `carve` window, and
/// returns them sorted by offset.
fn check_sparse(bar: &RegionInfo, carve: (u64, u64)) -> Result<Vec<SparseArea>, UapiError> {
    let Some(areas) = bar.sparse.as_ref() else {
        if bar.flags.mmap() {
            return Err(UapiError::ComponentBlockMappable);
        }
        return Ok(Vec::new());
    };
    let mut sorted = areas.clone();
    sorted.sort_by_key(|a| (a.offset, a.size));
    for a in &sorted {
        if a.size == 0 {
            return Err(UapiError::SparseAreaEmpty { offset: a.offset });
        }
        let end = a
            .offset
            .checked_add(a.size)
            .filter(|end| *end <= bar.size)
            .ok_or(UapiError::SparseAreaOutsideBar {
                offset: a.offset,
                size: a.size,
                bar_size: bar.size,
            })?;
        if a.offset < carve.1 && carve.0 < end {
            return Err(UapiError::SparseOverlapsComponent {
                offset: a.offset,
                size: a.size,
                carve_start: carve.0,
                carve_end: carve.1,
            });
        }
    }
    for pair in sorted.windows(2) {
        if let [a, b] = pair {
            // Ends cannot overflow: every area was checked to end inside the BAR.
            if b.offset < a.offset.saturating_add(a.size) {
                return Err(UapiError::SparseAreasOverlap {
                    a_offset: a.offset,
                    a_size: a.size,
                    b_offset: b.offset,
                    b_size: b.size,
                });
            }
        }
    }
    Ok(sorted)
}
