//! Byte layouts of the VFIO structures the kernel returns, and their encoders.
//!
//! All structures are little-endian LP64 layouts (spec §1.1, §2.4, §2.5). Decoding here
//! is bounds-checked field access only; validation lives in the parsers.

/// `VFIO_DEVICE_FLAGS_RESET`.
pub const DEVICE_FLAGS_RESET: u32 = 1 << 0;
/// `VFIO_DEVICE_FLAGS_PCI`.
pub const DEVICE_FLAGS_PCI: u32 = 1 << 1;
/// `VFIO_DEVICE_FLAGS_CAPS`.
pub const DEVICE_FLAGS_CAPS: u32 = 1 << 7;
/// `VFIO_DEVICE_FLAGS_CXL`.
pub const DEVICE_FLAGS_CXL: u32 = 1 << 9;

/// `VFIO_REGION_INFO_FLAG_READ`.
pub const REGION_FLAG_READ: u32 = 1 << 0;
/// `VFIO_REGION_INFO_FLAG_WRITE`.
pub const REGION_FLAG_WRITE: u32 = 1 << 1;
/// `VFIO_REGION_INFO_FLAG_MMAP`.
pub const REGION_FLAG_MMAP: u32 = 1 << 2;
/// `VFIO_REGION_INFO_FLAG_CAPS`.
pub const REGION_FLAG_CAPS: u32 = 1 << 3;

/// `VFIO_REGION_INFO_CAP_SPARSE_MMAP`.
pub const REGION_CAP_SPARSE_MMAP: u16 = 1;
/// `VFIO_REGION_INFO_CAP_TYPE`.
pub const REGION_CAP_TYPE: u16 = 2;
/// `VFIO_DEVICE_INFO_CAP_CXL`.
pub const DEVICE_CAP_CXL: u16 = 6;
/// Version of the CXL device capability (1 in every revision).
pub const DEVICE_CAP_CXL_VERSION: u16 = 1;

/// `VFIO_REGION_TYPE_PCI_VENDOR_TYPE | PCI_VENDOR_ID_CXL`.
pub const REGION_TYPE_CXL: u32 = 0x8000_1E98;
/// Subtype of the DPA / HDM memory region.
pub const REGION_SUBTYPE_CXL_DPA: u32 = 1;
/// Subtype of the COMP_REGS component-register shadow.
pub const REGION_SUBTYPE_CXL_COMP_REGS: u32 = 2;
/// `VFIO_REGION_INFO_CAP_CXL_COMP_REGS` (v4): the COMP_REGS geometry capability.
///
/// **Assumption**: the v4 header hunk was not found; 6 is the next free region-info
/// capability id after the upstream ones (1..=5). See `docs/uapi.md` §7.
pub const REGION_CAP_CXL_COMP_REGS: u16 = 6;
/// Version of the v4 COMP_REGS geometry capability.
pub const REGION_CAP_CXL_COMP_REGS_VERSION: u16 = 1;
/// Size of the v4 COMP_REGS geometry capability (header, `bar` u32, reserved u32,
/// `offset` u64). **Assumption** (field widths not seen, `docs/uapi.md` §7).
pub const COMP_REGS_GEOMETRY_CAP_SIZE: usize = 24;

/// Index of the config-space region (`VFIO_PCI_CONFIG_REGION_INDEX`).
pub const CONFIG_REGION_INDEX: u32 = 7;
/// Number of fixed vfio-pci regions; device-specific regions start here.
pub const PCI_NUM_REGIONS: u32 = 9;
/// Number of PCI BARs; a component register BAR index must be below this.
pub const PCI_NUM_BARS: u32 = 6;
/// The kernel's file-offset shift (`VFIO_PCI_OFFSET_SHIFT`); never used to compute
/// offsets in the library (they come from the kernel), only by the simulator.
pub const PCI_OFFSET_SHIFT: u32 = 40;

/// v2 CXL capability flag: decoder 0 firmware-committed.
pub const CXL_V2_FIRMWARE_COMMITTED: u32 = 1 << 0;
/// v2 CXL capability flag: device is CXL.cache capable.
pub const CXL_V2_CACHE_CAPABLE: u32 = 1 << 1;
/// v3 CXL capability flag: decoder 0 committed by host firmware.
pub const CXL_V3_HOST_FIRMWARE_COMMITTED: u32 = 1 << 0;

/// Size of `struct vfio_device_info`.
pub const DEVICE_INFO_SIZE: usize = 24;
/// Size of `struct vfio_region_info`.
pub const REGION_INFO_SIZE: usize = 32;
/// Size of `struct vfio_info_cap_header`.
pub const CAP_HEADER_SIZE: usize = 8;
/// Size of the v2 CXL capability.
pub const CXL_CAP_V2_SIZE: usize = 32;
/// Size of the v3 CXL capability (LP64).
pub const CXL_CAP_V3_SIZE: usize = 48;
/// Size of the sparse-mmap capability header (cap header + nr_areas + reserved).
pub const SPARSE_HEADER_SIZE: usize = 16;
/// Size of one sparse-mmap area.
pub const SPARSE_AREA_SIZE: usize = 16;
/// Size of the region type capability.
pub const TYPE_CAP_SIZE: usize = 16;

/// `VFIO_DEVICE_FEATURE_GET`.
pub const DEVICE_FEATURE_GET: u32 = 1 << 16;
/// `VFIO_DEVICE_FEATURE_DMA_BUF` (v4 exports device memory as a dma-buf).
pub const DEVICE_FEATURE_DMA_BUF: u32 = 11;
/// Size of `struct vfio_device_feature` (argsz, flags).
pub const DEVICE_FEATURE_SIZE: usize = 8;
/// Size of `struct vfio_device_feature_dma_buf` without its ranges.
pub const DMA_BUF_FEATURE_SIZE: usize = 16;
/// Size of one `struct vfio_region_dma_range`.
pub const DMA_RANGE_SIZE: usize = 16;

/// Reads a little-endian u16 at `off`, `None` if out of bounds.
pub fn le16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}
/// Reads a little-endian u32 at `off`, `None` if out of bounds.
pub fn le32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}
/// Reads a little-endian u64 at `off`, `None` if out of bounds.
pub fn le64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// `struct vfio_device_info`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceInfoHeader {
    /// Size the kernel needs for the whole answer (grows to include capabilities).
    pub argsz: u32,
    /// `VFIO_DEVICE_FLAGS_*`.
    pub flags: u32,
    /// Number of regions.
    pub num_regions: u32,
    /// Number of IRQ indexes.
    pub num_irqs: u32,
    /// Offset of the first capability from the start of the structure (0 = none).
    pub cap_offset: u32,
}

impl DeviceInfoHeader {
    /// Decodes the fixed header.
    pub fn decode(b: &[u8]) -> Option<Self> {
        Some(Self {
            argsz: le32(b, 0)?,
            flags: le32(b, 4)?,
            num_regions: le32(b, 8)?,
            num_irqs: le32(b, 12)?,
            cap_offset: le32(b, 16)?,
        })
    }

    /// Encodes the fixed header (24 bytes, trailing pad zero).
    pub fn encode(&self) -> [u8; DEVICE_INFO_SIZE] {
        let mut b = [0u8; DEVICE_INFO_SIZE];
        b[0..4].copy_from_slice(&self.argsz.to_le_bytes());
        b[4..8].copy_from_slice(&self.flags.to_le_bytes());
        b[8..12].copy_from_slice(&self.num_regions.to_le_bytes());
        b[12..16].copy_from_slice(&self.num_irqs.to_le_bytes());
        b[16..20].copy_from_slice(&self.cap_offset.to_le_bytes());
        b
    }
}

/// `struct vfio_region_info`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionInfoHeader {
    /// Size the kernel needs for the whole answer.
    pub argsz: u32,
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub flags: u32,
    /// Region index.
    pub index: u32,
    /// Offset of the first capability from the start of the structure (0 = none).
    pub cap_offset: u32,
    /// Region size.
    pub size: u64,
    /// File offset of the region in the device fd.
    pub offset: u64,
}

impl RegionInfoHeader {
    /// Decodes the fixed header.
    pub fn decode(b: &[u8]) -> Option<Self> {
        Some(Self {
            argsz: le32(b, 0)?,
            flags: le32(b, 4)?,
            index: le32(b, 8)?,
            cap_offset: le32(b, 12)?,
            size: le64(b, 16)?,
            offset: le64(b, 24)?,
        })
    }

    /// Encodes the fixed header.
    pub fn encode(&self) -> [u8; REGION_INFO_SIZE] {
        let mut b = [0u8; REGION_INFO_SIZE];
        b[0..4].copy_from_slice(&self.argsz.to_le_bytes());
        b[4..8].copy_from_slice(&self.flags.to_le_bytes());
        b[8..12].copy_from_slice(&self.index.to_le_bytes());
        b[12..16].copy_from_slice(&self.cap_offset.to_le_bytes());
        b[16..24].copy_from_slice(&self.size.to_le_bytes());
        b[24..32].copy_from_slice(&self.offset.to_le_bytes());
        b
    }
}

/// `struct vfio_info_cap_header`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapHeader {
    /// Capability ID.
    pub id: u16,
    /// Capability version.
    pub version: u16,
    /// Offset of the next capability from the start of the enclosing structure.
    pub next: u32,
}

impl CapHeader {
    /// Decodes a capability header at `off`.
    pub fn decode(b: &[u8], off: usize) -> Option<Self> {
        Some(Self {
            id: le16(b, off)?,
            version: le16(b, off + 2)?,
            next: le32(b, off + 4)?,
        })
    }

    /// Encodes the header.
    pub fn encode(&self) -> [u8; CAP_HEADER_SIZE] {
        let mut b = [0u8; CAP_HEADER_SIZE];
        b[0..2].copy_from_slice(&self.id.to_le_bytes());
        b[2..4].copy_from_slice(&self.version.to_le_bytes());
        b[4..8].copy_from_slice(&self.next.to_le_bytes());
        b
    }
}

/// The v2 (NVIDIA kernel) CXL device capability body, after the cap header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CxlCapV2 {
    /// BAR holding the component register block (u8 @8).
    pub hdm_regs_bar_index: u8,
    /// Reserved bytes @9..12 (zero).
    pub reserved: [u8; 3],
    /// `VFIO_CXL_CAP_*` flags (@12).
    pub flags: u32,
    /// BAR-relative offset of the CXL.cache/mem area = component block + 0x1000 (@16).
    pub hdm_regs_offset: u64,
    /// Absolute region index of the DPA region (@24).
    pub dpa_region_index: u32,
    /// Absolute region index of COMP_REGS (@28).
    pub comp_regs_region_index: u32,
}

impl CxlCapV2 {
    /// Decodes a whole v2 capability (header included) starting at `off`.
    pub fn decode(b: &[u8], off: usize) -> Option<Self> {
        let mut reserved = [0u8; 3];
        reserved.copy_from_slice(b.get(off + 9..off + 12)?);
        Some(Self {
            hdm_regs_bar_index: *b.get(off + 8)?,
            reserved,
            flags: le32(b, off + 12)?,
            hdm_regs_offset: le64(b, off + 16)?,
            dpa_region_index: le32(b, off + 24)?,
            comp_regs_region_index: le32(b, off + 28)?,
        })
    }

    /// Encodes the capability with header `hdr`.
    pub fn encode(&self, hdr: CapHeader) -> [u8; CXL_CAP_V2_SIZE] {
        let mut b = [0u8; CXL_CAP_V2_SIZE];
        b[0..8].copy_from_slice(&hdr.encode());
        b[8] = self.hdm_regs_bar_index;
        b[9..12].copy_from_slice(&self.reserved);
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.hdm_regs_offset.to_le_bytes());
        b[24..28].copy_from_slice(&self.dpa_region_index.to_le_bytes());
        b[28..32].copy_from_slice(&self.comp_regs_region_index.to_le_bytes());
        b
    }
}

/// The v3 CXL device capability body (LP64 layout).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CxlCapV3 {
    /// `VFIO_CXL_CAP_HOST_FIRMWARE_COMMITTED` (@8).
    pub flags: u32,
    /// Absolute index of the HDM memory region (@12).
    pub hdm_region_idx: u32,
    /// Absolute index of the COMP_REGS region (@16).
    pub comp_reg_region_idx: u32,
    /// BAR index of the component register block (@20).
    pub comp_reg_bar: u32,
    /// Reserved (@24, zero).
    pub resv: u32,
    /// Compiler hole (@28); zero as the kernel fills it.
    pub pad: u32,
    /// BAR-relative offset of the component register block (@32).
    pub comp_reg_offset: u64,
    /// Size of the component register block (@40), always 0x10000.
    pub comp_reg_size: u64,
}

impl CxlCapV3 {
    /// Decodes a whole v3 capability (header included) starting at `off`.
    pub fn decode(b: &[u8], off: usize) -> Option<Self> {
        Some(Self {
            flags: le32(b, off + 8)?,
            hdm_region_idx: le32(b, off + 12)?,
            comp_reg_region_idx: le32(b, off + 16)?,
            comp_reg_bar: le32(b, off + 20)?,
            resv: le32(b, off + 24)?,
            pad: le32(b, off + 28)?,
            comp_reg_offset: le64(b, off + 32)?,
            comp_reg_size: le64(b, off + 40)?,
        })
    }

    /// Encodes the capability with header `hdr`.
    pub fn encode(&self, hdr: CapHeader) -> [u8; CXL_CAP_V3_SIZE] {
        let mut b = [0u8; CXL_CAP_V3_SIZE];
        b[0..8].copy_from_slice(&hdr.encode());
        b[8..12].copy_from_slice(&self.flags.to_le_bytes());
        b[12..16].copy_from_slice(&self.hdm_region_idx.to_le_bytes());
        b[16..20].copy_from_slice(&self.comp_reg_region_idx.to_le_bytes());
        b[20..24].copy_from_slice(&self.comp_reg_bar.to_le_bytes());
        b[24..28].copy_from_slice(&self.resv.to_le_bytes());
        b[28..32].copy_from_slice(&self.pad.to_le_bytes());
        b[32..40].copy_from_slice(&self.comp_reg_offset.to_le_bytes());
        b[40..48].copy_from_slice(&self.comp_reg_size.to_le_bytes());
        b
    }
}

/// One sparse-mmap area.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SparseArea {
    /// Offset inside the region.
    pub offset: u64,
    /// Size of the area.
    pub size: u64,
}

/// Encodes a sparse-mmap capability (`VFIO_REGION_INFO_CAP_SPARSE_MMAP`, version 1).
pub fn encode_sparse_cap(next: u32, areas: &[SparseArea]) -> Vec<u8> {
    let hdr = CapHeader {
        id: REGION_CAP_SPARSE_MMAP,
        version: 1,
        next,
    };
    let mut b = Vec::with_capacity(SPARSE_HEADER_SIZE + areas.len() * SPARSE_AREA_SIZE);
    b.extend_from_slice(&hdr.encode());
    b.extend_from_slice(&(areas.len() as u32).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    for a in areas {
        b.extend_from_slice(&a.offset.to_le_bytes());
        b.extend_from_slice(&a.size.to_le_bytes());
    }
    b
}

/// Encodes a region type capability (`VFIO_REGION_INFO_CAP_TYPE`, version 1).
pub fn encode_type_cap(next: u32, type_: u32, subtype: u32) -> [u8; TYPE_CAP_SIZE] {
    let hdr = CapHeader {
        id: REGION_CAP_TYPE,
        version: 1,
        next,
    };
    let mut b = [0u8; TYPE_CAP_SIZE];
    b[0..8].copy_from_slice(&hdr.encode());
    b[8..12].copy_from_slice(&type_.to_le_bytes());
    b[12..16].copy_from_slice(&subtype.to_le_bytes());
    b
}

/// The v4 COMP_REGS geometry capability body (after its header).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompRegsGeometryCap {
    /// BAR holding the component registers.
    pub bar: u32,
    /// Reserved (padding before the u64), zero-filled by the kernel.
    pub reserved: u32,
    /// BAR offset of the HDM decoder block (not of the component block).
    pub offset: u64,
}

impl CompRegsGeometryCap {
    /// Decodes the capability starting at `off` (header included).
    pub fn decode(b: &[u8], off: usize) -> Option<Self> {
        Some(Self {
            bar: le32(b, off.checked_add(8)?)?,
            reserved: le32(b, off.checked_add(12)?)?,
            offset: le64(b, off.checked_add(16)?)?,
        })
    }

    /// Encodes the capability with `hdr`.
    pub fn encode(&self, hdr: CapHeader) -> [u8; COMP_REGS_GEOMETRY_CAP_SIZE] {
        let mut b = [0u8; COMP_REGS_GEOMETRY_CAP_SIZE];
        b[..CAP_HEADER_SIZE].copy_from_slice(&hdr.encode());
        b[8..12].copy_from_slice(&self.bar.to_le_bytes());
        b[12..16].copy_from_slice(&self.reserved.to_le_bytes());
        b[16..24].copy_from_slice(&self.offset.to_le_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_roundtrip() {
        let v2 = CxlCapV2 {
            hdm_regs_bar_index: 2,
            reserved: [0; 3],
            flags: 3,
            hdm_regs_offset: 0x1_1000,
            dpa_region_index: 9,
            comp_regs_region_index: 10,
        };
        let hdr = CapHeader {
            id: DEVICE_CAP_CXL,
            version: 1,
            next: 0,
        };
        let b = v2.encode(hdr);
        assert_eq!(b[8], 2);
        assert_eq!(le64(&b, 16), Some(0x1_1000));
        assert_eq!(CxlCapV2::decode(&b, 0), Some(v2));
        let v3 = CxlCapV3 {
            flags: 1,
            hdm_region_idx: 10,
            comp_reg_region_idx: 9,
            comp_reg_bar: 2,
            comp_reg_offset: 0x1_0000,
            comp_reg_size: 0x1_0000,
            ..Default::default()
        };
        let b = v3.encode(hdr);
        assert_eq!(le64(&b, 32), Some(0x1_0000));
        assert_eq!(CxlCapV3::decode(&b, 0), Some(v3));
        assert_eq!(CxlCapV3::decode(&b[..47], 0), None);
        let geo = CompRegsGeometryCap {
            bar: 2,
            reserved: 0,
            offset: 0x1_1200,
        };
        let b = geo.encode(CapHeader {
            id: REGION_CAP_CXL_COMP_REGS,
            version: 1,
            next: 0,
        });
        assert_eq!(b.len(), COMP_REGS_GEOMETRY_CAP_SIZE);
        assert_eq!(le64(&b, 16), Some(0x1_1200));
        assert_eq!(CompRegsGeometryCap::decode(&b, 0), Some(geo));
        assert_eq!(CompRegsGeometryCap::decode(&b[..23], 0), None);
        let r = RegionInfoHeader {
            argsz: 32,
            flags: 7,
            index: 9,
            cap_offset: 0,
            size: 1 << 28,
            offset: 9 << 40,
        };
        assert_eq!(RegionInfoHeader::decode(&r.encode()), Some(r));
        let d = DeviceInfoHeader {
            argsz: 80,
            flags: 0x283,
            num_regions: 11,
            num_irqs: 5,
            cap_offset: 24,
        };
        assert_eq!(DeviceInfoHeader::decode(&d.encode()), Some(d));
        assert_eq!(le32(&[1, 2, 3], usize::MAX - 1), None);
    }
}
