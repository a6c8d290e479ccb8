//! The validated description of one device, as the probe produces it.

use crate::uapi::UapiRevision;

/// A VFIO region the runtime uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RegionDesc {
    /// Region index.
    pub index: u32,
    /// Region size.
    pub size: u64,
    /// File offset in the device fd, as the kernel reported it.
    pub file_offset: u64,
    /// Whether the kernel allows mmap of the region.
    pub mmap: bool,
}

/// Where the component register block lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ComponentDesc {
    /// BAR index.
    pub bar: u8,
    /// Offset of the block in the BAR.
    pub offset: u64,
    /// Block size (64 KiB).
    pub size: u64,
}

/// The HDM decoder block found by the capability-array walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct HdmDesc {
    /// Offset of the HDM block inside the component block.
    pub block_offset: u64,
    /// Decoder count.
    pub decoder_count: u32,
    /// Raw HDM Decoder Capability register.
    pub capability: u32,
}

/// Facts from the CXL Device DVSEC (through the kernel's virtualised config space).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DvsecDesc {
    /// Config-space offset of the DVSEC.
    pub offset: u16,
    /// DVSEC revision.
    pub revision: u8,
    /// Capability register.
    pub capability: u16,
    /// Control register.
    pub control: u16,
    /// Lock register.
    pub lock: u16,
    /// Range 1 size (bits 31:28 of Size Low and Size High).
    pub range1_size: u64,
}

/// Everything the runtime needs to know about a device.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DeviceDesc {
    /// UAPI revision.
    pub revision: UapiRevision,
    /// Decoder 0 was committed by firmware.
    pub firmware_committed: bool,
    /// CXL.cache capable (v2 reports it; v3 does not).
    pub cache_capable: Option<bool>,
    /// The DPA (HDM memory) region.
    pub dpa: RegionDesc,
    /// The COMP_REGS region.
    pub comp_regs: RegionDesc,
    /// Block offset that COMP_REGS offset 0 corresponds to (v2 0x1000, v3 0).
    pub comp_regs_base_in_block: u64,
    /// The BAR holding the component block.
    pub bar: RegionDesc,
    /// The component block.
    pub component: ComponentDesc,
    /// The kernel's sparse-mmap areas of the component BAR, as `(offset, size)`.
    pub sparse_areas: Vec<(u64, u64)>,
    /// The HDM decoder block.
    pub hdm: HdmDesc,
    /// The config-space region.
    pub config: RegionDesc,
    /// CXL Device DVSEC facts. [`probe`](super::probe::probe) refuses a device without
    /// the DVSEC, so a probed description always has it; `None` only in descriptions
    /// built by hand.
    pub dvsec: Option<DvsecDesc>,
    /// Config offset of the PCI Express capability (always present after
    /// [`probe`](super::probe::probe), as for `dvsec`).
    pub pcie_cap: Option<u16>,
}
