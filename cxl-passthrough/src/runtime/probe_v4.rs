//! The v4 parts of the probe: the region scan that replaces the device capability, and
//! the HDM block location cross-checked three ways (geometry capability, Register
//! Locator, capability array read through the BAR), as a guest finds it.

use super::probe::{ProbeError, region_read};
use crate::backend::{Backend, BackendError};
use crate::errors::Chain;
use crate::regs::component::{
    CM_OFFSET, COMPONENT_BLOCK_SIZE, HdmLocation, WalkError, find_hdm_block,
};
use crate::regs::dvsec::{CXL_VENDOR_ID, DVSEC_ID_REGISTER_LOCATOR, DvsecCapability};
use crate::regs::pci::{ExtCapError, find_dvsec};
use crate::regs::reglocator::{BLOCK_ID_COMPONENT, ENTRY_SIZE, FIRST_ENTRY, RegisterBlock};
use crate::uapi::wire::PCI_NUM_REGIONS;
use crate::uapi::{CxlLayout, DeviceInfo, RegionInfo, parse_region_info};

/// Most device-specific regions scanned; a kernel reporting more is hostile (v4 adds
/// two, other vfio-pci variants a handful).
pub const MAX_SCANNED_REGIONS: u32 = 64;

/// Asks the region info of every device-specific region (`9..num_regions`).
pub fn scan_regions(
    backend: &dyn Backend,
    dev: &DeviceInfo,
) -> Result<Vec<RegionInfo>, ProbeError> {
    let count = dev.num_regions.saturating_sub(PCI_NUM_REGIONS);
    if count > MAX_SCANNED_REGIONS {
        return Err(ProbeError::TooManyRegions {
            num_regions: dev.num_regions,
            max: PCI_NUM_REGIONS + MAX_SCANNED_REGIONS,
        });
    }
    (PCI_NUM_REGIONS..dev.num_regions)
        .map(|i| Ok(parse_region_info(&backend.region_info(i)?, i)?))
        .collect()
}

/// Finds the HDM block as the guest does (Register Locator → component block →
/// capability array read through the BAR) and checks it is the block the kernel's
/// geometry capability names, with exactly one decoder (v4 binds no other device).
///
/// Reads inside the HDM block come from COMP_REGS (the BAR reads all-ones there), the
/// rest of the component block from the BAR region.
pub fn locate_hdm(
    backend: &dyn Backend,
    layout: &CxlLayout,
    config: (u64, u64),
) -> Result<HdmLocation, ProbeError> {
    check_register_locator(backend, layout, config)?;
    let bar = (layout.bar.file_offset, layout.bar.size);
    let comp = (layout.comp_regs.file_offset, layout.comp_regs.size);
    let hdm_rel = layout.comp_regs.block_offset;
    let read = |off: u64| -> Result<u32, BackendError> {
        match off.checked_sub(hdm_rel) {
            Some(r) if r < comp.1 => region_read::<4>(backend, comp, r, "COMP_REGS"),
            _ => region_read::<4>(backend, bar, layout.component.offset + off, "component BAR"),
        }
        .map(u32::from_le_bytes)
    };
    let hdm = find_hdm_block(read, CM_OFFSET, COMPONENT_BLOCK_SIZE)
        .map_err(|e: WalkError<BackendError>| ProbeError::Walk(Chain(&e).to_string()))?;
    if hdm.offset != hdm_rel {
        return Err(ProbeError::HdmMismatch {
            walked: hdm.offset,
            kernel: hdm_rel,
        });
    }
    if hdm.decoder_count != 1 {
        return Err(ProbeError::DecoderCount(hdm.decoder_count));
    }
    Ok(hdm)
}

/// The CXL Device DVSEC must say what v4 binds only with: CXL.cache and CXL.mem
/// capable, CXL reset capable (every v4 reset is a CXL reset).
pub fn check_capability(capability: u16) -> Result<(), ProbeError> {
    let cap = DvsecCapability::from_bits(capability);
    let missing = if !cap.cache_capable() {
        Some("Cache_Capable")
    } else if !cap.mem_capable() {
        Some("Mem_Capable")
    } else if !cap.cxl_reset_capable() {
        Some("CXL_Reset_Capable")
    } else {
        None
    };
    match missing {
        Some(missing) => Err(ProbeError::V4Capability {
            capability,
            missing,
        }),
        None => Ok(()),
    }
}

/// The Register Locator's component entry must name the component block the geometry
/// capability implies (the guest finds the block there).
fn check_register_locator(
    backend: &dyn Backend,
    layout: &CxlLayout,
    cfg: (u64, u64),
) -> Result<(), ProbeError> {
    let read32 =
        |off: u16| region_read::<4>(backend, cfg, u64::from(off), "config").map(u32::from_le_bytes);
    let loc = match find_dvsec(read32, CXL_VENDOR_ID, DVSEC_ID_REGISTER_LOCATOR) {
        Ok(Some(loc)) => loc,
        Ok(None) => return Err(ProbeError::NoRegisterLocator),
        Err(ExtCapError::Read { source, .. }) => return Err(source.into()),
        Err(e) => return Err(ProbeError::Config(e.to_string())),
    };
    let want = (layout.component.bar, layout.component.offset);
    let mut found = None;
    for i in 0..RegisterBlock::count(loc.length) {
        let at = loc.offset + FIRST_ENTRY + i * ENTRY_SIZE;
        let b = RegisterBlock::decode(read32(at)?, read32(at + 4)?);
        if b.block_id == BLOCK_ID_COMPONENT {
            found = Some((b.bar, b.offset));
            break;
        }
    }
    match found {
        Some(got) if got == want => Ok(()),
        got => Err(ProbeError::RegisterLocatorMismatch {
            locator: got,
            kernel: want,
        }),
    }
}
