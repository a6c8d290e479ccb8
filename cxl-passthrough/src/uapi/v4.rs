//! v4 ("vfio-cxl module"): the CXL regions are found by their type capabilities, and
//! the component registers by the COMP_REGS region's geometry capability.
//!
//! A v4 kernel sets `VFIO_DEVICE_FLAGS_CXL` but emits no device capability
//! ([`DeviceInfo::v4`]). The caller asks the region info of every device-specific
//! region (`9..num_regions`) and hands the answers to [`discover_v4`], which finds the
//! HDM memory region and the COMP_REGS region and returns the same [`CxlInfo`] v2 and
//! v3 derive from their capability, so [`super::validate_layout`] applies unchanged.

use super::device::{CxlInfo, DeviceInfo, RawCxlCap, UapiRevision};
use super::error::{RegionRole, UapiError};
use super::region::RegionInfo;
use super::wire::{
    CompRegsGeometryCap, PCI_NUM_BARS, PCI_NUM_REGIONS, REGION_SUBTYPE_CXL_COMP_REGS,
    REGION_SUBTYPE_CXL_DPA, REGION_TYPE_CXL,
};
use crate::regs::component::{CM_OFFSET, COMPONENT_BLOCK_SIZE};

/// Offset of the reserved u32 inside the geometry capability.
const GEOMETRY_RESERVED: usize = 12;

/// The one region among `regions` (device-specific indices only) with the CXL type and
/// `subtype`.
fn find_role(
    regions: &[RegionInfo],
    role: RegionRole,
    subtype: u32,
) -> Result<&RegionInfo, UapiError> {
    let mut found: Option<&RegionInfo> = None;
    for r in regions
        .iter()
        .filter(|r| r.index >= PCI_NUM_REGIONS && r.region_type == Some((REGION_TYPE_CXL, subtype)))
    {
        if let Some(first) = found {
            return Err(UapiError::DuplicateCxlRegion {
                role,
                first: first.index,
                second: r.index,
            });
        }
        found = Some(r);
    }
    found.ok_or(UapiError::CxlRegionMissing { role, subtype })
}

/// Builds the v4 [`CxlInfo`] from the device info and the region infos of the
/// device-specific regions (any order; regions of other types are ignored).
///
/// The component block is the 64 KiB block holding the HDM block (Register Locator
/// offsets are in 64 KiB units); the probe cross-checks it against the Register Locator
/// and the capability array read through the BAR.
pub fn discover_v4(dev: &DeviceInfo, regions: &[RegionInfo]) -> Result<CxlInfo, UapiError> {
    if !dev.v4 {
        return Err(UapiError::NotCxl);
    }
    let dpa = find_role(regions, RegionRole::Dpa, REGION_SUBTYPE_CXL_DPA)?;
    let comp = find_role(regions, RegionRole::CompRegs, REGION_SUBTYPE_CXL_COMP_REGS)?;
    if let Some(other) = regions
        .iter()
        .find(|r| r.geometry.is_some() && r.index != comp.index)
    {
        return Err(UapiError::GeometryCapOnWrongRegion { index: other.index });
    }
    let geo: CompRegsGeometryCap = comp
        .geometry
        .ok_or(UapiError::GeometryCapMissing { index: comp.index })?;
    if geo.reserved != 0 {
        return Err(UapiError::ReservedNotZero {
            revision: UapiRevision::V4,
            offset: GEOMETRY_RESERVED,
            value: geo.reserved,
        });
    }
    if geo.bar >= PCI_NUM_BARS {
        return Err(UapiError::BarIndexOutOfRange { bar: geo.bar });
    }
    let component_offset = geo.offset & !(COMPONENT_BLOCK_SIZE - 1);
    let rel = geo.offset - component_offset;
    let misplaced = UapiError::HdmBlockMisplaced {
        offset: geo.offset,
        size: comp.size,
    };
    if rel < CM_OFFSET
        || rel
            .checked_add(comp.size)
            .is_none_or(|e| e > COMPONENT_BLOCK_SIZE)
    {
        return Err(misplaced);
    }
    for index in [dpa.index, comp.index] {
        if index >= dev.num_regions {
            return Err(UapiError::RegionIndexOutOfRange {
                role: if index == dpa.index {
                    RegionRole::Dpa
                } else {
                    RegionRole::CompRegs
                },
                index,
                num_regions: dev.num_regions,
            });
        }
    }
    Ok(CxlInfo {
        revision: UapiRevision::V4,
        // v4 binds only a device whose decoder 0 has a host-committed HPA range (else it
        // falls back to plain vfio-pci); the probe checks the live CTRL.COMMITTED.
        firmware_committed: true,
        cache_capable: None,
        unknown_flags: 0,
        component_bar: geo.bar as u8,
        component_offset,
        component_size: COMPONENT_BLOCK_SIZE,
        dpa_region_index: dpa.index,
        comp_regs_region_index: comp.index,
        raw: RawCxlCap::V4(geo),
    })
}
