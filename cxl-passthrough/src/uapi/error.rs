//! Typed errors for malformed kernel answers.

use std::fmt;

use thiserror::Error;

use super::UapiRevision;

/// Which structure a chain or truncation error was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Answer {
    /// `VFIO_DEVICE_GET_INFO`.
    DeviceInfo,
    /// `VFIO_DEVICE_GET_REGION_INFO`.
    RegionInfo,
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Answer::DeviceInfo => "device info",
            Answer::RegionInfo => "region info",
        })
    }
}

/// The role a region plays in a CXL device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegionRole {
    /// The PCI BAR holding the component register block.
    ComponentBar,
    /// The DPA / HDM memory region (subtype 1).
    Dpa,
    /// The COMP_REGS component-register shadow (subtype 2).
    CompRegs,
}

impl fmt::Display for RegionRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RegionRole::ComponentBar => "component BAR",
            RegionRole::Dpa => "DPA region",
            RegionRole::CompRegs => "COMP_REGS region",
        })
    }
}

/// A malformed or inconsistent kernel answer. One variant per defect.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum UapiError {
    /// The buffer is shorter than the fixed structure.
    #[error("{answer}: answer of {len} bytes is shorter than the {need}-byte header")]
    ShortHeader {
        /// Which answer.
        answer: Answer,
        /// Bytes received.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// CAPS flag set but no chain returned: the caller's buffer was too small.
    #[error(
        "{answer}: CAPS flag set but cap_offset is 0 (argsz {argsz}, buffer {len} bytes); retry with argsz"
    )]
    CapsNotReturned {
        /// Which answer.
        answer: Answer,
        /// argsz the kernel asked for.
        argsz: u32,
        /// Bytes received.
        len: usize,
    },
    /// A capability chain exists but the CAPS flag is clear.
    #[error("{answer}: cap_offset {cap_offset:#x} without the CAPS flag")]
    ChainWithoutCapsFlag {
        /// Which answer.
        answer: Answer,
        /// The first capability offset.
        cap_offset: u32,
    },
    /// A capability offset points outside the buffer or into the fixed header.
    #[error("{answer}: capability offset {offset:#x} outside [{min:#x}, {len:#x})")]
    CapOffsetOutOfBounds {
        /// Which answer.
        answer: Answer,
        /// The offending offset.
        offset: u32,
        /// Smallest legal offset (the fixed structure size).
        min: usize,
        /// Buffer length.
        len: usize,
    },
    /// A capability offset is not 8-byte aligned.
    #[error("{answer}: capability offset {offset:#x} is not 8-byte aligned")]
    CapOffsetMisaligned {
        /// Which answer.
        answer: Answer,
        /// The offending offset.
        offset: u32,
    },
    /// A `next` pointer revisits a capability.
    #[error("{answer}: capability chain loops back to {offset:#x}")]
    ChainLoop {
        /// Which answer.
        answer: Answer,
        /// The revisited offset.
        offset: u32,
    },
    /// A `next` pointer goes backwards or into the current capability's header.
    #[error("{answer}: capability at {offset:#x} has next {next:#x}, not past its header")]
    ChainBackwards {
        /// Which answer.
        answer: Answer,
        /// Capability offset.
        offset: u32,
        /// Its `next` field.
        next: u32,
    },
    /// More capabilities than any kernel produces.
    #[error("{answer}: more than {max} capabilities in the chain")]
    TooManyCaps {
        /// Which answer.
        answer: Answer,
        /// The hop limit.
        max: usize,
    },
    /// A capability's body does not fit before the next capability / end of buffer.
    #[error("capability id {id} at {offset:#x} needs {need} bytes, only {have} available")]
    TruncatedCap {
        /// Capability ID.
        id: u16,
        /// Capability offset.
        offset: usize,
        /// Bytes the layout needs.
        need: usize,
        /// Bytes available (extent).
        have: usize,
    },
    /// A known capability appears twice.
    #[error("capability id {id} appears twice (at {first:#x} and {second:#x})")]
    DuplicateCap {
        /// Capability ID.
        id: u16,
        /// First offset.
        first: usize,
        /// Second offset.
        second: usize,
    },
    /// A known capability has a version this code does not understand.
    #[error("capability id {id} has version {version}, expected {expected}")]
    UnsupportedCapVersion {
        /// Capability ID.
        id: u16,
        /// Version found.
        version: u16,
        /// Version expected.
        expected: u16,
    },
    /// The CXL capability matches neither the v2 nor the v3 layout.
    #[error(
        "CXL capability at {offset:#x} ({extent} bytes available, u32@24 = {word24:#x}, u32@28 = {word28:#x}) \
         matches neither the v2 (32 bytes, indices at @24/@28) nor the v3 (48 bytes, zero @24/@28) layout"
    )]
    UnknownLayout {
        /// Capability offset.
        offset: usize,
        /// Bytes available to the capability.
        extent: usize,
        /// The u32 at cap+24 (v2 DPA index / v3 `__resv`), 0 if absent.
        word24: u32,
        /// The u32 at cap+28 (v2 COMP_REGS index / v3 hole), 0 if absent.
        word28: u32,
    },
    /// `VFIO_DEVICE_FLAGS_CXL` without `VFIO_DEVICE_FLAGS_PCI` or `VFIO_DEVICE_FLAGS_CAPS`.
    #[error("device flags {flags:#x}: CXL flag requires PCI and CAPS")]
    CxlWithoutPciOrCaps {
        /// Device flags.
        flags: u32,
    },
    /// `VFIO_DEVICE_FLAGS_CXL` without a CXL capability in the chain.
    #[error("device flags {flags:#x} announce CXL but the chain has no CXL capability")]
    CxlCapMissing {
        /// Device flags.
        flags: u32,
    },
    /// A CXL capability without `VFIO_DEVICE_FLAGS_CXL`.
    #[error("device flags {flags:#x} lack CXL but the chain has a CXL capability")]
    UnexpectedCxlCap {
        /// Device flags.
        flags: u32,
    },
    /// A forced v4 decode met a CXL device capability (v4 never emits one).
    #[error("forced v4, but the device info has a CXL capability at {offset:#x} (v2/v3 only)")]
    CxlCapUnderV4 {
        /// Capability offset.
        offset: usize,
    },
    /// v4: no device-specific region has the CXL (type, subtype) of this role.
    #[error("v4: no device-specific region has the {role} type (0x80001e98, {subtype})")]
    CxlRegionMissing {
        /// Role.
        role: RegionRole,
        /// The subtype searched for.
        subtype: u32,
    },
    /// v4: two device-specific regions carry the same CXL (type, subtype).
    #[error("v4: regions {first} and {second} both carry the {role} type")]
    DuplicateCxlRegion {
        /// Role.
        role: RegionRole,
        /// First region index.
        first: u32,
        /// Second region index.
        second: u32,
    },
    /// v4: the COMP_REGS region has no geometry capability.
    #[error(
        "v4: COMP_REGS region {index} has no VFIO_REGION_INFO_CAP_CXL_COMP_REGS geometry capability"
    )]
    GeometryCapMissing {
        /// Region index.
        index: u32,
    },
    /// v4: a region other than COMP_REGS carries the geometry capability.
    #[error("v4: region {index} (not COMP_REGS) carries the COMP_REGS geometry capability")]
    GeometryCapOnWrongRegion {
        /// Region index.
        index: u32,
    },
    /// v4: the HDM block the geometry capability names is not inside a component block's
    /// CXL.cache/mem area (block-relative offset below 0x1000, or its end past 64 KiB).
    #[error(
        "v4: HDM block at BAR offset {offset:#x} (+{size:#x}) is not inside the CXL.cache/mem part of a \
         64 KiB component block"
    )]
    HdmBlockMisplaced {
        /// BAR offset of the HDM block.
        offset: u64,
        /// COMP_REGS size (the HDM block length).
        size: u64,
    },
    /// A reserved field is not zero.
    #[error("{revision} CXL capability: reserved field at cap+{offset} is {value:#x}, must be 0")]
    ReservedNotZero {
        /// Layout being decoded.
        revision: UapiRevision,
        /// Byte offset inside the capability.
        offset: usize,
        /// Value found.
        value: u32,
    },
    /// The component BAR index is not a PCI BAR.
    #[error("component register BAR index {bar} is not a BAR (0..=5)")]
    BarIndexOutOfRange {
        /// Reported BAR index.
        bar: u32,
    },
    /// A region index is not a device-specific region of this device.
    #[error("{role} index {index} outside the device-specific range [9, {num_regions})")]
    RegionIndexOutOfRange {
        /// Region role.
        role: RegionRole,
        /// Reported index.
        index: u32,
        /// The device's region count.
        num_regions: u32,
    },
    /// DPA and COMP_REGS indices are equal.
    #[error("DPA and COMP_REGS region indices are both {index}")]
    RegionIndicesEqual {
        /// The shared index.
        index: u32,
    },
    /// v2 `hdm_regs_offset` below 0x1000 (the component block would start before the BAR).
    #[error("v2 hdm_regs_offset {offset:#x} is below the 0x1000 CXL.cachemem offset")]
    HdmRegsOffsetTooSmall {
        /// Reported offset.
        offset: u64,
    },
    /// v3 `comp_reg_size` is not the 64 KiB component block size.
    #[error("v3 comp_reg_size {size:#x} is not 0x10000")]
    ComponentSizeInvalid {
        /// Reported size.
        size: u64,
    },
    /// The region info answers for another index than the one asked.
    #[error("asked region info for index {asked}, kernel answered index {answered}")]
    RegionIndexMismatch {
        /// Index asked.
        asked: u32,
        /// Index in the answer.
        answered: u32,
    },
    /// A sparse-mmap capability on a region without the MMAP flag.
    #[error("region {index}: sparse-mmap capability without the MMAP flag")]
    SparseWithoutMmap {
        /// Region index.
        index: u32,
    },
    /// `validate_layout` was given a device without a CXL capability.
    #[error("device is not a CXL device (no CXL capability)")]
    NotCxl,
    /// `validate_layout` was given the region info of another region.
    #[error("{role}: expected region {expected}, got region info for {got}")]
    WrongRegionGiven {
        /// Role.
        role: RegionRole,
        /// Index the CXL capability names.
        expected: u32,
        /// Index of the region info passed.
        got: u32,
    },
    /// A region lacks the expected (type, subtype).
    #[error("{role}: region type {found:x?}, expected ({:#x}, {})", expected.0, expected.1)]
    WrongRegionType {
        /// Role.
        role: RegionRole,
        /// Expected (type, subtype).
        expected: (u32, u32),
        /// Found (type, subtype), `None` without a type capability.
        found: Option<(u32, u32)>,
    },
    /// A region has size 0.
    #[error("{role} (index {index}) has size 0")]
    ZeroSizedRegion {
        /// Role.
        role: RegionRole,
        /// Region index.
        index: u32,
    },
    /// Required region flags are missing.
    #[error("{role}: flags {flags:#x} lack required {required:#x}")]
    RegionFlagsMissing {
        /// Role.
        role: RegionRole,
        /// Flags found.
        flags: u32,
        /// Flags required.
        required: u32,
    },
    /// COMP_REGS advertises MMAP (it must only be accessed through read/write).
    #[error("COMP_REGS region advertises MMAP (flags {flags:#x})")]
    CompRegsMappable {
        /// Flags found.
        flags: u32,
    },
    /// COMP_REGS size violates the revision's rule.
    #[error("{revision} COMP_REGS size {size:#x} invalid ({rule})")]
    CompRegsSizeInvalid {
        /// Revision.
        revision: UapiRevision,
        /// Size found.
        size: u64,
        /// The rule broken.
        rule: &'static str,
    },
    /// DPA size not a multiple of 256 MiB.
    #[error("DPA size {size:#x} is not a multiple of 256 MiB")]
    DpaSizeUnaligned {
        /// Size found.
        size: u64,
    },
    /// `offset + size` of a region's file window overflows u64.
    #[error("{role}: file offset {offset:#x} + size {size:#x} overflows")]
    RegionOffsetOverflow {
        /// Role.
        role: RegionRole,
        /// File offset.
        offset: u64,
        /// Size.
        size: u64,
    },
    /// The component block does not fit inside its BAR.
    #[error("component block [{offset:#x}, +{size:#x}) outside BAR of size {bar_size:#x}")]
    ComponentOutsideBar {
        /// Block offset in the BAR.
        offset: u64,
        /// Block size.
        size: u64,
        /// BAR size.
        bar_size: u64,
    },
    /// The whole BAR is mappable (MMAP without sparse areas), component block included.
    #[error(
        "component BAR advertises MMAP without sparse areas: the component block would be mappable"
    )]
    ComponentBlockMappable,
    /// A sparse area has size 0.
    #[error("sparse area at {offset:#x} has size 0")]
    SparseAreaEmpty {
        /// Area offset.
        offset: u64,
    },
    /// A sparse area does not fit inside the BAR.
    #[error("sparse area [{offset:#x}, +{size:#x}) outside BAR of size {bar_size:#x}")]
    SparseAreaOutsideBar {
        /// Area offset.
        offset: u64,
        /// Area size.
        size: u64,
        /// BAR size.
        bar_size: u64,
    },
    /// Two sparse areas overlap.
    #[error("sparse areas [{a_offset:#x}, +{a_size:#x}) and [{b_offset:#x}, +{b_size:#x}) overlap")]
    SparseAreasOverlap {
        /// First area offset.
        a_offset: u64,
        /// First area size.
        a_size: u64,
        /// Second area offset.
        b_offset: u64,
        /// Second area size.
        b_size: u64,
    },
    /// A sparse area intersects the (page-rounded for v3) component block.
    #[error(
        "sparse area [{offset:#x}, +{size:#x}) intersects the component block carve [{carve_start:#x}, {carve_end:#x})"
    )]
    SparseOverlapsComponent {
        /// Area offset.
        offset: u64,
        /// Area size.
        size: u64,
        /// Start of the excluded window.
        carve_start: u64,
        /// End of the excluded window.
        carve_end: u64,
    },
}
