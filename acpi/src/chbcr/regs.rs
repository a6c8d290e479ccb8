//! The few CHBCR registers the model exposes, as typed bitfields.
//!
//! Defined here rather than borrowed from `cxl-passthrough` so that `cxl-acpi` stays
//! independent of it (layouts: CXL r3.1 8.2.4 / 8.2.4.20, `shared/spec/cxl-registers.md`).

use bitfield_struct::bitfield;

/// Offset of the CXL.cache/CXL.mem area (capability array header) in the block.
pub const CACHE_MEM_OFFSET: u64 = 0x1000;
/// Offset of the first capability header slot in the block.
pub const CAP_SLOT0_OFFSET: u64 = CACHE_MEM_OFFSET + 4;
/// Offset of the HDM Decoder Capability structure from the cache/mem area start
/// (the capability header's pointer field).
pub const HDM_POINTER: u16 = 0x10;
/// Offset of the HDM Decoder Capability structure in the block.
pub const HDM_OFFSET: u64 = CACHE_MEM_OFFSET + HDM_POINTER as u64;
/// HDM register offsets relative to [`HDM_OFFSET`].
pub mod hdm {
    /// HDM Decoder Capability.
    pub const CAPABILITY: u64 = 0x00;
    /// HDM Decoder Global Control.
    pub const GLOBAL_CONTROL: u64 = 0x04;
    /// Decoder 0 Base Low.
    pub const D0_BASE_LO: u64 = 0x10;
    /// Decoder 0 Base High.
    pub const D0_BASE_HI: u64 = 0x14;
    /// Decoder 0 Size Low.
    pub const D0_SIZE_LO: u64 = 0x18;
    /// Decoder 0 Size High.
    pub const D0_SIZE_HI: u64 = 0x1C;
    /// Decoder 0 Control.
    pub const D0_CONTROL: u64 = 0x20;
    /// Decoder 0 Target List Low (interleave ways 0-3).
    pub const D0_TARGET_LO: u64 = 0x24;
    /// Decoder 0 Target List High (ways 4-7).
    pub const D0_TARGET_HI: u64 = 0x28;
    /// Size of an HDM structure with one decoder.
    pub const LEN_ONE_DECODER: u64 = 0x30;
}

/// Capability ID of the CXL.cache/CXL.mem capability array header.
pub const CAP_ID_CACHE_MEM: u16 = 1;
/// Capability ID of the HDM Decoder Capability.
pub const CAP_ID_HDM: u16 = 5;

/// CXL.cache/CXL.mem Capability Header (block + 0x1000).
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub struct CapArrayHeader {
    /// Capability ID, 1.
    pub cap_id: u16,
    /// CXL capability version, 1.
    #[bits(4)]
    pub version: u8,
    /// CXL.cache/mem version, 1.
    #[bits(4)]
    pub cache_mem_version: u8,
    /// Number of capability header slots that follow.
    pub array_size: u8,
}

/// One capability header slot (block + 0x1004 + 4i).
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub struct CapHeader {
    /// Capability ID.
    pub cap_id: u16,
    /// Capability version.
    #[bits(4)]
    pub version: u8,
    /// Offset of the structure from the cache/mem area start.
    #[bits(12)]
    pub pointer: u16,
}

/// HDM Decoder Capability register (read-only).
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub struct HdmCapability {
    /// Encoded decoder count (0 = 1 decoder).
    #[bits(4)]
    pub decoder_count: u8,
    /// Target-list entries per decoder.
    #[bits(4)]
    pub target_count: u8,
    #[bits(24)]
    __: u32,
}

/// HDM Decoder Global Control.
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub struct HdmGlobalControl {
    /// Poison On Decode Error Enable.
    pub poison_enable: bool,
    /// HDM Decoder Enable.
    pub decoder_enable: bool,
    #[bits(30)]
    __: u32,
}

/// Decoder n Control.
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub struct DecoderControl {
    /// Interleave granularity (encoded).
    #[bits(4)]
    pub ig: u8,
    /// Interleave ways (encoded; 0 = 1 way).
    #[bits(4)]
    pub iw: u8,
    /// Lock On Commit.
    pub lock_on_commit: bool,
    /// Commit.
    pub commit: bool,
    /// Committed.
    pub committed: bool,
    /// Error Not Committed.
    pub error_not_committed: bool,
    /// Target Type: 0 device-coherent (Type-2), 1 host-only (Type-3).
    pub host_only: bool,
    #[bits(19)]
    __: u32,
}
