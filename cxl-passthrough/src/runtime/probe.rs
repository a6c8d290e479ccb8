//! Probe: backend → validated [`DeviceDesc`].
//!
//! Asks the backend for the device info and the three region infos the CXL capability
//! names, validates them together (see [`crate::uapi::validate_layout`]), walks the
//! COMP_REGS capability array for the HDM block, and reads the CXL Device DVSEC facts
//! through the config region. Every kernel answer is treated as hostile.

use thiserror::Error;

use super::desc::{ComponentDesc, DeviceDesc, DvsecDesc, HdmDesc, RegionDesc};
use super::probe_v4;
use crate::backend::{Backend, BackendError};
use crate::errors::Chain;
use crate::regs::component::{CM_OFFSET, WalkError, find_hdm_block};
use crate::regs::dvsec::{CXL_VENDOR_ID, DVSEC_ID_CXL_DEVICE, off};
use crate::regs::hdm::join_lo_hi;
use crate::regs::pci::{CAP_ID_PCIE, ExtCapError, find_cap, find_dvsec};
use crate::uapi::wire::CONFIG_REGION_INDEX;
use crate::uapi::{
    RevisionChoice, UapiError, UapiRevision, discover_v4, parse_device_info, parse_region_info,
    validate_layout_with_page_size,
};

/// Why probing failed.
#[derive(Debug, Error)]
pub enum ProbeError {
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The kernel's answer is malformed or inconsistent.
    #[error("kernel answer rejected")]
    Uapi(#[from] UapiError),
    /// The device is not a CXL device (no CXL flag / capability).
    #[error(
        "not a CXL device: the kernel reports no VFIO_DEVICE_FLAGS_CXL / CXL capability. Causes: vfio-pci built \
         without CXL support, the disable_cxl module parameter, or (v2) the kernel fell back to plain vfio-pci \
         because HDM decoder 0 is not firmware-committed, which this crate does not support; (v4) the vfio-cxl \
         module is missing, or it fell back to plain vfio-pci because the device is not both CXL.cache and \
         CXL.mem capable, has more than one HDM decoder, is interleaved, cannot do a CXL reset, or has no \
         host-committed decoder"
    )]
    NotCxl,
    /// The COMP_REGS capability array walk failed.
    #[error("COMP_REGS capability array: {0}")]
    Walk(String),
    /// The config-space DVSEC walk failed.
    #[error("config space: {0}")]
    Config(String),
    /// The kernel's config region cannot hold the PCIe extended configuration space,
    /// where a CXL device's DVSECs live.
    #[error(
        "the kernel reports a config region of {size} bytes; a CXL device needs the whole PCIe extended \
         configuration space ({need} bytes) for its CXL DVSECs and PCI Express capability"
    )]
    ConfigRegionTooSmall {
        /// Reported size.
        size: u64,
        /// Required size.
        need: u64,
    },
    /// The config space has no CXL Device DVSEC (Vendor 0x1E98, ID 0).
    #[error(
        "config space has no CXL Device DVSEC (vendor 0x1e98, ID 0): the kernel hides it or the device is not \
         a CXL device; without it Mem_Enable cannot be set"
    )]
    NoDeviceDvsec,
    /// v4: more device-specific regions than any CXL kernel reports.
    #[error(
        "the kernel reports {num_regions} regions; at most {max} are scanned for the v4 CXL regions"
    )]
    TooManyRegions {
        /// Reported region count.
        num_regions: u32,
        /// The limit.
        max: u32,
    },
    /// v4: the capability-array walk found the HDM block elsewhere than the kernel's
    /// geometry capability says (component-block offsets).
    #[error(
        "the capability array puts the HDM block at component-block offset {walked:#x}, the kernel's COMP_REGS \
         geometry at {kernel:#x}: the guest would program a decoder the VMM does not emulate"
    )]
    HdmMismatch {
        /// Offset found by the walk.
        walked: u64,
        /// Offset from the geometry capability.
        kernel: u64,
    },
    /// v4: the HDM block does not have exactly one decoder.
    #[error(
        "the HDM block reports {0} decoders; v4 supports exactly one (the kernel should not have bound it)"
    )]
    DecoderCount(u32),
    /// v4: the CXL Device DVSEC does not advertise what v4 binds only with.
    #[error(
        "the CXL Device DVSEC Capability ({capability:#06x}) lacks {missing}: a v4 kernel binds only CXL.cache \
         and CXL.mem capable devices with CXL reset (the device resets through it everywhere)"
    )]
    V4Capability {
        /// The Capability register.
        capability: u16,
        /// What is missing.
        missing: &'static str,
    },
    /// v4: config space has no Register Locator DVSEC.
    #[error(
        "config space has no Register Locator DVSEC (vendor 0x1e98, ID 8): a guest cannot find the component \
         registers"
    )]
    NoRegisterLocator,
    /// v4: the Register Locator names another component block than the kernel.
    #[error(
        "the Register Locator names the component block {locator:x?} (BAR, offset), the kernel {kernel:x?}"
    )]
    RegisterLocatorMismatch {
        /// What the Register Locator says (`None`: no component entry).
        locator: Option<(u8, u64)>,
        /// What the geometry capability implies.
        kernel: (u8, u64),
    },
    /// The config space has no PCI Express capability.
    #[error("config space has no PCI Express capability: a CXL device is a PCIe function")]
    NoPcieCapability,
}

/// Size of the PCIe extended configuration space: the least config region a CXL device
/// can have.
pub const PCIE_CONFIG_SPACE_SIZE: u64 = 4096;

/// Probes a device through `backend`.
pub fn probe(
    backend: &dyn Backend,
    choice: RevisionChoice,
    page_size: u64,
) -> Result<DeviceDesc, ProbeError> {
    let mut dev = parse_device_info(&backend.device_info()?, choice)?;
    if dev.v4 {
        let regions = probe_v4::scan_regions(backend, &dev)?;
        dev.cxl = Some(discover_v4(&dev, &regions)?);
    }
    let Some(cxl) = dev.cxl.as_ref() else {
        return Err(ProbeError::NotCxl);
    };
    let region = |index: u32| -> Result<_, ProbeError> {
        Ok(parse_region_info(&backend.region_info(index)?, index)?)
    };
    let bar = region(u32::from(cxl.component_bar))?;
    let dpa = region(cxl.dpa_region_index)?;
    let comp = region(cxl.comp_regs_region_index)?;
    let layout = validate_layout_with_page_size(&dev, &bar, &dpa, &comp, page_size)?;

    let config = region(CONFIG_REGION_INDEX)?;
    if config.size < PCIE_CONFIG_SPACE_SIZE {
        return Err(ProbeError::ConfigRegionTooSmall {
            size: config.size,
            need: PCIE_CONFIG_SPACE_SIZE,
        });
    }

    let dvsec = read_dvsec(backend, config.offset, config.size)?;
    let Some(found) = dvsec else {
        return Err(ProbeError::NoDeviceDvsec);
    };
    if layout.revision == UapiRevision::V4 {
        probe_v4::check_capability(found.capability)?;
    }
    let cfg = (config.offset, config.size);
    let pcie_cap = match find_cap(
        |o| config_read::<1>(backend, cfg, o).map(|b| b[0]),
        CAP_ID_PCIE,
    ) {
        Ok(c) => c,
        Err(ExtCapError::Read { source, .. }) => return Err(source.into()),
        Err(e) => return Err(ProbeError::Config(e.to_string())),
    };
    if pcie_cap.is_none() {
        return Err(ProbeError::NoPcieCapability);
    }

    // HDM block, as a component-block offset. v2/v3: walk the capability array in
    // COMP_REGS (region offsets). v4: COMP_REGS is the HDM block alone; walk as the guest
    // does and cross-check.
    let hdm_block_offset = match layout.revision {
        UapiRevision::V4 => None,
        UapiRevision::V2 | UapiRevision::V3 => Some(layout.comp_regs.block_offset),
    };
    let hdm = match hdm_block_offset {
        None => probe_v4::locate_hdm(backend, &layout, (config.offset, config.size))?,
        Some(region_base) => {
            let cm_base_in_region = CM_OFFSET - region_base;
            let comp = (layout.comp_regs.file_offset, layout.comp_regs.size);
            let read_region = |off: u64| {
                region_read::<4>(backend, comp, off, "COMP_REGS").map(u32::from_le_bytes)
            };
            let mut hdm = find_hdm_block(read_region, cm_base_in_region, layout.comp_regs.size)
                .map_err(|e: WalkError<BackendError>| ProbeError::Walk(Chain(&e).to_string()))?;
            hdm.offset += region_base;
            hdm
        }
    };

    let desc = DeviceDesc {
        revision: layout.revision,
        firmware_committed: layout.firmware_committed,
        cache_capable: layout.cache_capable,
        dpa: RegionDesc {
            index: layout.dpa.index,
            size: layout.dpa.size,
            file_offset: layout.dpa.file_offset,
            mmap: layout.dpa.mmap,
        },
        comp_regs: RegionDesc {
            index: layout.comp_regs.index,
            size: layout.comp_regs.size,
            file_offset: layout.comp_regs.file_offset,
            mmap: false,
        },
        comp_regs_base_in_block: layout.comp_regs.block_offset,
        bar: RegionDesc {
            index: layout.bar.index,
            size: layout.bar.size,
            file_offset: layout.bar.file_offset,
            mmap: layout.bar.flags.mmap(),
        },
        component: ComponentDesc {
            bar: layout.component.bar,
            offset: layout.component.offset,
            size: layout.component.size,
        },
        sparse_areas: layout
            .bar
            .sparse
            .iter()
            .map(|a| (a.offset, a.size))
            .collect(),
        hdm: HdmDesc {
            block_offset: hdm.offset,
            decoder_count: hdm.decoder_count,
            capability: hdm.capability.into_bits(),
        },
        config: RegionDesc {
            index: CONFIG_REGION_INDEX,
            size: config.size,
            file_offset: config.offset,
            mmap: false,
        },
        dvsec,
        pcie_cap,
    };
    Ok(desc)
}

/// Reads `N` bytes at `off` of the region `(file offset, size)`; zero beyond its end, a
/// short transfer is an error.
pub(crate) fn region_read<const N: usize>(
    backend: &dyn Backend,
    region: (u64, u64),
    off: u64,
    what: &str,
) -> Result<[u8; N], BackendError> {
    let mut b = [0u8; N];
    if off.checked_add(N as u64).is_none_or(|end| end > region.1) {
        return Ok(b);
    }
    let n = backend.read(region.0, off, &mut b)?;
    if n != N {
        return Err(BackendError::Short {
            op: format!("{what} read @{off:#x}"),
            done: n,
            wanted: N,
        });
    }
    Ok(b)
}

/// Reads `N` bytes of config space (zero beyond the region).
fn config_read<const N: usize>(
    backend: &dyn Backend,
    cfg: (u64, u64),
    off: u16,
) -> Result<[u8; N], BackendError> {
    region_read(backend, cfg, u64::from(off), "config")
}

/// Reads the CXL Device DVSEC through the config region (`None` when absent).
///
/// 16-bit registers are read with 16-bit accesses: v3 splits config accesses at
/// DVSEC + 0x0A, so no access straddles the header and the body.
fn read_dvsec(
    backend: &dyn Backend,
    cfg_offset: u64,
    cfg_size: u64,
) -> Result<Option<DvsecDesc>, ProbeError> {
    let cfg = (cfg_offset, cfg_size);
    let read32 = |off: u16| config_read::<4>(backend, cfg, off).map(u32::from_le_bytes);
    let read16 = |off: u16| config_read::<2>(backend, cfg, off).map(u16::from_le_bytes);
    let loc = match find_dvsec(read32, CXL_VENDOR_ID, DVSEC_ID_CXL_DEVICE) {
        Ok(Some(loc)) => loc,
        Ok(None) => return Ok(None),
        Err(ExtCapError::Read { source, .. }) => return Err(source.into()),
        Err(e) => return Err(ProbeError::Config(e.to_string())),
    };
    if loc.length < off::range_base_lo(0) + 4 {
        return Err(ProbeError::Config(format!(
            "CXL Device DVSEC too short ({:#x} bytes)",
            loc.length
        )));
    }
    let base = loc.offset;
    Ok(Some(DvsecDesc {
        offset: base,
        revision: loc.revision,
        capability: read16(base + off::CAPABILITY)?,
        control: read16(base + off::CONTROL)?,
        lock: read16(base + off::LOCK)?,
        range1_size: join_lo_hi(
            read32(base + off::range_size_lo(0))?,
            read32(base + off::range_size_hi(0))?,
        ),
    }))
}
