//! Typed errors of ACPI description validation ([`crate::AcpiDescription::validate`]).

use thiserror::Error;

/// Why a [`crate::AcpiDescription`] cannot be described to a guest.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DescriptionError {
    /// A CEDT without a host bridge describes nothing Linux can use.
    #[error("the topology has no CXL host bridge")]
    NoHostBridge,
    /// More host bridges than the AML device names can express.
    #[error("{count} host bridges; at most {max} are supported")]
    TooManyHostBridges {
        /// Host bridges given.
        count: usize,
        /// Supported maximum.
        max: usize,
    },
    /// Two host bridges share a UID (CHBS UID = `_UID` must be unique).
    #[error("host bridge UID {0} is used more than once")]
    DuplicateUid(u32),
    /// `bus_start > bus_end`.
    #[error("host bridge UID {uid}: bus range {start:#x}..={end:#x} is empty")]
    EmptyBusRange {
        /// Host bridge UID.
        uid: u32,
        /// First bus.
        start: u8,
        /// Last bus.
        end: u8,
    },
    /// A `_PRT` entry names a device above 31, a pin above INTD, or repeats a
    /// device/pin pair.
    #[error(
        "host bridge UID {uid}: INTx route for device {device} pin {pin} is invalid or repeated"
    )]
    BadIntxRoute {
        /// Host bridge UID.
        uid: u32,
        /// Device number.
        device: u8,
        /// Pin (0 = INTA).
        pin: u8,
    },
    /// Two host bridges of one PCI segment decode overlapping bus numbers.
    #[error("host bridges UID {a} and UID {b} share segment {segment} and overlapping bus ranges")]
    BusOverlap {
        /// PCI segment.
        segment: u16,
        /// First host bridge UID.
        a: u32,
        /// Second host bridge UID.
        b: u32,
    },
    /// CHBCR base is 0 (Linux ignores such a CHBS), not 64 KiB aligned, or the block
    /// wraps around the address space.
    #[error("host bridge UID {uid}: CHBCR base {base:#x} is zero, not 64 KiB aligned or wraps")]
    BadChbcrBase {
        /// Host bridge UID.
        uid: u32,
        /// Offending base.
        base: u64,
    },
    /// An MMIO window of a host bridge is empty, wraps, or (32-bit window) ends above 4 GiB.
    #[error(
        "host bridge UID {uid}: {kind} window {base:#x}+{size:#x} is empty, wraps or is out of range"
    )]
    BadMmioWindow {
        /// Host bridge UID.
        uid: u32,
        /// "mmio32" or "mmio64".
        kind: &'static str,
        /// Window base.
        base: u64,
        /// Window size.
        size: u64,
    },
    /// The number of interleave targets is not 1, 2, 3, 4, 6, 8, 12 or 16.
    #[error("window {index}: {count} interleave targets is not a valid way count")]
    InvalidWays {
        /// Window index.
        index: usize,
        /// Targets given.
        count: usize,
    },
    /// Window base not 256 MiB aligned (Linux rejects the window).
    #[error("window {index}: base {base:#x} is not 256 MiB aligned")]
    WindowBaseAlignment {
        /// Window index.
        index: usize,
        /// Offending base.
        base: u64,
    },
    /// Window size zero or not a multiple of ways x 256 MiB.
    #[error("window {index}: size {size:#x} is zero or not a multiple of {granule:#x}")]
    WindowSize {
        /// Window index.
        index: usize,
        /// Offending size.
        size: u64,
        /// Required multiple (ways x 256 MiB).
        granule: u64,
    },
    /// `base + size` overflows.
    #[error("window {index}: {base:#x}+{size:#x} wraps around the address space")]
    WindowWraps {
        /// Window index.
        index: usize,
        /// Base.
        base: u64,
        /// Size.
        size: u64,
    },
    /// A target UID names no host bridge of the topology.
    #[error("window {index}: target UID {uid} is not a host bridge of this topology")]
    UnknownTarget {
        /// Window index.
        index: usize,
        /// Target UID.
        uid: u32,
    },
    /// A host bridge appears twice in one window's target list.
    #[error("window {index}: target UID {uid} is listed more than once")]
    DuplicateTarget {
        /// Window index.
        index: usize,
        /// Target UID.
        uid: u32,
    },
    /// Reserved window-restriction bits (6..=15) are set.
    #[error("window {index}: restriction bits {bits:#06x} include reserved bits")]
    ReservedRestrictions {
        /// Window index.
        index: usize,
        /// The raw restriction field.
        bits: u16,
    },
    /// Two address ranges of the topology (CHBCRs, windows, host-bridge MMIO) overlap.
    #[error("{a} overlaps {b}")]
    Overlap {
        /// First range, described.
        a: String,
        /// Second range, described.
        b: String,
    },
}
