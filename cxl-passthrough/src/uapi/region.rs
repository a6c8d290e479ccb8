//! `VFIO_DEVICE_GET_REGION_INFO` answer: header, sparse-mmap and type capabilities.

use super::chain::{self, CapRef};
use super::error::{Answer, UapiError};
use super::wire::{
    COMP_REGS_GEOMETRY_CAP_SIZE, CompRegsGeometryCap, REGION_CAP_CXL_COMP_REGS,
    REGION_CAP_CXL_COMP_REGS_VERSION, REGION_CAP_SPARSE_MMAP, REGION_CAP_TYPE, REGION_INFO_SIZE,
    RegionInfoHeader, SPARSE_AREA_SIZE, SPARSE_HEADER_SIZE, SparseArea, TYPE_CAP_SIZE, le32, le64,
};

/// Version of the sparse-mmap capability this code understands.
pub const SPARSE_CAP_VERSION: u16 = 1;
/// Version of the region type capability this code understands.
pub const TYPE_CAP_VERSION: u16 = 1;

/// `VFIO_REGION_INFO_FLAG_*`, typed: a kernel UAPI word (not a spec register), so a
/// small hand-written newtype over the raw `u32` rather than a bitfield type.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RegionFlags(u32);

impl RegionFlags {
    /// `VFIO_REGION_INFO_FLAG_READ`.
    const READ: u32 = 1 << 0;
    /// `VFIO_REGION_INFO_FLAG_WRITE`.
    const WRITE: u32 = 1 << 1;
    /// `VFIO_REGION_INFO_FLAG_MMAP`.
    const MMAP: u32 = 1 << 2;
    /// `VFIO_REGION_INFO_FLAG_CAPS`.
    const CAPS: u32 = 1 << 3;

    /// No flag set.
    pub const fn new() -> Self {
        Self(0)
    }
    /// The flags of the kernel's raw word (unknown bits kept).
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }
    /// The raw word.
    pub const fn into_bits(self) -> u32 {
        self.0
    }
    const fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
    const fn with(self, bit: u32, on: bool) -> Self {
        Self(if on { self.0 | bit } else { self.0 & !bit })
    }
    /// `VFIO_REGION_INFO_FLAG_READ`.
    pub const fn read(self) -> bool {
        self.has(Self::READ)
    }
    /// `VFIO_REGION_INFO_FLAG_WRITE`.
    pub const fn write(self) -> bool {
        self.has(Self::WRITE)
    }
    /// `VFIO_REGION_INFO_FLAG_MMAP`.
    pub const fn mmap(self) -> bool {
        self.has(Self::MMAP)
    }
    /// `VFIO_REGION_INFO_FLAG_CAPS`.
    pub const fn caps(self) -> bool {
        self.has(Self::CAPS)
    }
    /// Bits this code does not know (tolerated), shifted down as a 28-bit field.
    pub const fn unknown(self) -> u32 {
        self.0 >> 4
    }
    /// With `VFIO_REGION_INFO_FLAG_READ` set to `on`.
    pub const fn with_read(self, on: bool) -> Self {
        self.with(Self::READ, on)
    }
    /// With `VFIO_REGION_INFO_FLAG_WRITE` set to `on`.
    pub const fn with_write(self, on: bool) -> Self {
        self.with(Self::WRITE, on)
    }
    /// With `VFIO_REGION_INFO_FLAG_MMAP` set to `on`.
    pub const fn with_mmap(self, on: bool) -> Self {
        self.with(Self::MMAP, on)
    }
    /// With `VFIO_REGION_INFO_FLAG_CAPS` set to `on`.
    pub const fn with_caps(self, on: bool) -> Self {
        self.with(Self::CAPS, on)
    }
}

impl From<u32> for RegionFlags {
    fn from(bits: u32) -> Self {
        Self(bits)
    }
}

impl From<RegionFlags> for u32 {
    fn from(f: RegionFlags) -> u32 {
        f.0
    }
}

impl std::fmt::Debug for RegionFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionFlags")
            .field("read", &self.read())
            .field("write", &self.write())
            .field("mmap", &self.mmap())
            .field("caps", &self.caps())
            .field("unknown", &self.unknown())
            .finish()
    }
}

/// A validated `VFIO_DEVICE_GET_REGION_INFO` answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionInfo {
    /// Region index (equal to the one asked).
    pub index: u32,
    /// Region flags.
    pub flags: RegionFlags,
    /// Region size in bytes.
    pub size: u64,
    /// File offset of the region in the device fd.
    pub offset: u64,
    /// `(type, subtype)` from `VFIO_REGION_INFO_CAP_TYPE`.
    pub region_type: Option<(u32, u32)>,
    /// Areas from `VFIO_REGION_INFO_CAP_SPARSE_MMAP`, in the kernel's order.
    pub sparse: Option<Vec<SparseArea>>,
    /// The v4 COMP_REGS geometry capability (`VFIO_REGION_INFO_CAP_CXL_COMP_REGS`), raw.
    pub geometry: Option<CompRegsGeometryCap>,
}

/// Parses the whole `vfio_region_info` answer for region `index`.
pub fn parse_region_info(bytes: &[u8], index: u32) -> Result<RegionInfo, UapiError> {
    let hdr = RegionInfoHeader::decode(bytes)
        .filter(|_| bytes.len() >= REGION_INFO_SIZE)
        .ok_or(UapiError::ShortHeader {
            answer: Answer::RegionInfo,
            len: bytes.len(),
            need: REGION_INFO_SIZE,
        })?;
    if hdr.index != index {
        return Err(UapiError::RegionIndexMismatch {
            asked: index,
            answered: hdr.index,
        });
    }
    let flags = RegionFlags::from_bits(hdr.flags);
    if flags.caps() && hdr.cap_offset == 0 {
        return Err(UapiError::CapsNotReturned {
            answer: Answer::RegionInfo,
            argsz: hdr.argsz,
            len: bytes.len(),
        });
    }
    if !flags.caps() && hdr.cap_offset != 0 {
        return Err(UapiError::ChainWithoutCapsFlag {
            answer: Answer::RegionInfo,
            cap_offset: hdr.cap_offset,
        });
    }
    let caps = chain::walk(Answer::RegionInfo, bytes, REGION_INFO_SIZE, hdr.cap_offset)?;
    let region_type = chain::find_unique(&caps, REGION_CAP_TYPE)?
        .map(|c| parse_type(bytes, &c))
        .transpose()?;
    let sparse = chain::find_unique(&caps, REGION_CAP_SPARSE_MMAP)?
        .map(|c| parse_sparse(bytes, &c))
        .transpose()?;
    if sparse.is_some() && !flags.mmap() {
        return Err(UapiError::SparseWithoutMmap { index });
    }
    let geometry = chain::find_unique(&caps, REGION_CAP_CXL_COMP_REGS)?
        .map(|c| parse_geometry(bytes, &c))
        .transpose()?;
    Ok(RegionInfo {
        index,
        flags,
        size: hdr.size,
        offset: hdr.offset,
        region_type,
        sparse,
        geometry,
    })
}

fn parse_type(bytes: &[u8], cap: &CapRef) -> Result<(u32, u32), UapiError> {
    chain::check_version(cap, TYPE_CAP_VERSION)?;
    let body = cap.body(bytes, TYPE_CAP_SIZE)?;
    let truncated = UapiError::TruncatedCap {
        id: cap.header.id,
        offset: cap.offset,
        need: TYPE_CAP_SIZE,
        have: cap.extent,
    };
    match (le32(body, 8), le32(body, 12)) {
        (Some(t), Some(s)) => Ok((t, s)),
        _ => Err(truncated),
    }
}

fn parse_geometry(bytes: &[u8], cap: &CapRef) -> Result<CompRegsGeometryCap, UapiError> {
    chain::check_version(cap, REGION_CAP_CXL_COMP_REGS_VERSION)?;
    let body = cap.body(bytes, COMP_REGS_GEOMETRY_CAP_SIZE)?;
    CompRegsGeometryCap::decode(body, 0).ok_or(UapiError::TruncatedCap {
        id: cap.header.id,
        offset: cap.offset,
        need: COMP_REGS_GEOMETRY_CAP_SIZE,
        have: cap.extent,
    })
}

fn parse_sparse(bytes: &[u8], cap: &CapRef) -> Result<Vec<SparseArea>, UapiError> {
    chain::check_version(cap, SPARSE_CAP_VERSION)?;
    let head = cap.body(bytes, SPARSE_HEADER_SIZE)?;
    let nr = le32(head, 8).unwrap_or(0);
    // Bound the count by the bytes actually present before allocating anything.
    let need = usize::try_from(nr)
        .ok()
        .and_then(|n| n.checked_mul(SPARSE_AREA_SIZE))
        .and_then(|n| n.checked_add(SPARSE_HEADER_SIZE))
        .unwrap_or(usize::MAX);
    let body = cap.body(bytes, need)?;
    let areas = body
        .get(SPARSE_HEADER_SIZE..)
        .unwrap_or(&[])
        .chunks_exact(SPARSE_AREA_SIZE)
        .filter_map(|a| {
            Some(SparseArea {
                offset: le64(a, 0)?,
                size: le64(a, 8)?,
            })
        })
        .collect();
    Ok(areas)
}
