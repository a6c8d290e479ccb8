//! The guest CXL topology a VMM describes: host bridges and fixed memory windows.

use acpi_tables::sdt::Sdt;
use bitfield_struct::bitfield;

use crate::error::DescriptionError;

/// CHBCR (host bridge component register block) size for a CXL 2.0+ host bridge.
pub const CHBCR_SIZE: u64 = 0x1_0000;
/// CFMWS base/size granule (and HDM decoder granule).
pub const WINDOW_GRANULE: u64 = 256 << 20;
/// Most host bridges one topology may hold (AML device names `CX00`..`CXFF`).
pub const MAX_HOST_BRIDGES: usize = 256;

/// A guest-physical MMIO range `[base, base + size)` routed to a host bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmioWindow {
    /// First byte.
    pub base: u64,
    /// Length in bytes (non-zero).
    pub size: u64,
}

impl MmioWindow {
    /// Last byte, `None` if the window is empty or wraps.
    pub fn last(&self) -> Option<u64> {
        self.size
            .checked_sub(1)
            .and_then(|s| self.base.checked_add(s))
    }
}

/// One CXL host bridge (ACPI0016 device + CHBS), typically one per PCI segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostBridge {
    /// `_UID` = CHBS UID = the UID CFMWS target lists name. Unique in the topology.
    pub uid: u32,
    /// PCI segment (`_SEG`); needs a matching MCFG entry in the VMM.
    pub segment: u16,
    /// First bus number (`_BBN` and the `_CRS` bus range start).
    pub bus_start: u8,
    /// Last bus number (`_CRS` bus range end).
    pub bus_end: u8,
    /// Guest-physical base of the 64 KiB CHBCR (64 KiB aligned, non-zero).
    pub chbcr_base: u64,
    /// 32-bit MMIO window routed to the bridge (in `_CRS`), entirely below 4 GiB.
    pub mmio32: Option<MmioWindow>,
    /// 64-bit MMIO window routed to the bridge (in `_CRS`).
    pub mmio64: Option<MmioWindow>,
    /// Legacy INTx routing of the root bus (`_PRT`; empty: no `_PRT`, MSI only). Devices
    /// below a bridge are swizzled onto the bridge's slot by the OS.
    pub intx_routes: Vec<IntxRoute>,
}

/// One `_PRT` entry: INTx pin `pin` of root-bus slot `device` raises GSI `gsi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntxRoute {
    /// PCI device (slot) number on the root bus, 0..=31.
    pub device: u8,
    /// Interrupt pin: 0 = INTA .. 3 = INTD.
    pub pin: u8,
    /// Global System Interrupt it is wired to.
    pub gsi: u32,
}

/// Host-bridge interleave granularity (CFMWS HBIG; bytes = 256 << encoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Granularity {
    /// 256 bytes (what Linux uses for any 1-way window).
    #[default]
    B256 = 0,
    /// 512 bytes.
    B512 = 1,
    /// 1 KiB.
    K1 = 2,
    /// 2 KiB.
    K2 = 3,
    /// 4 KiB.
    K4 = 4,
    /// 8 KiB.
    K8 = 5,
    /// 16 KiB.
    K16 = 6,
}

impl Granularity {
    /// The encoded value (CFMWS HBIG, HDM decoder IG).
    pub const fn encoding(self) -> u8 {
        self as u8
    }

    /// Granularity in bytes.
    pub const fn bytes(self) -> u64 {
        256 << (self as u8)
    }

    /// The granularity of `bytes`, if it is one of the encodable values.
    pub fn from_bytes(bytes: u64) -> Option<Self> {
        [
            Self::B256,
            Self::B512,
            Self::K1,
            Self::K2,
            Self::K4,
            Self::K8,
            Self::K16,
        ]
        .into_iter()
        .find(|g| g.bytes() == bytes)
    }
}

/// CFMWS Window Restrictions (16 bits). CXL 2.0 names in brackets.
#[bitfield(u16)]
#[derive(PartialEq, Eq)]
pub struct WindowRestrictions {
    /// Bit 0: device-coherent memory (CXL Type 2 Memory). Linux `cap_type2`.
    pub device_coherent: bool,
    /// Bit 1: host-only coherent memory (CXL Type 3 Memory). Linux `cap_type3`.
    pub host_only: bool,
    /// Bit 2: volatile memory. Linux `cap_ram`.
    pub volatile: bool,
    /// Bit 3: persistent memory. Linux `cap_pmem`.
    pub persistent: bool,
    /// Bit 4: fixed device configuration (firmware committed; Linux `locked`).
    pub fixed_config: bool,
    /// Bit 5: back-invalidate (HDM-DB, CXL 3.0+); only meaningful with bit 0.
    pub back_invalidate: bool,
    /// Bits 6..=15: reserved, must be zero.
    #[bits(10)]
    pub reserved: u16,
}

impl WindowRestrictions {
    /// The default for a passed-through Type-2 device with a VMM-locked decoder:
    /// device-coherent | volatile | fixed configuration (0x15).
    pub const fn type2_locked() -> Self {
        Self::new()
            .with_device_coherent(true)
            .with_volatile(true)
            .with_fixed_config(true)
    }
}

/// One CXL Fixed Memory Window (CFMWS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CfmwsWindow {
    /// Guest-physical base, 256 MiB aligned.
    pub base: u64,
    /// Size, a non-zero multiple of ways x 256 MiB.
    pub size: u64,
    /// Host-bridge UIDs in interleave-position order (1, 2, 3, 4, 6, 8, 12 or 16).
    pub targets: Vec<u32>,
    /// Host-bridge interleave granularity.
    pub granularity: Granularity,
    /// Window restrictions.
    pub restrictions: WindowRestrictions,
    /// QoS Throttling Group.
    pub qtg_id: u16,
}

impl CfmwsWindow {
    /// A window with the passthrough defaults: 256 B granularity, Type-2 | volatile |
    /// fixed-config restrictions, QTG 0.
    pub fn new(base: u64, size: u64, targets: Vec<u32>) -> Self {
        Self {
            base,
            size,
            targets,
            granularity: Granularity::default(),
            restrictions: WindowRestrictions::type2_locked(),
            qtg_id: 0,
        }
    }

    /// Encoded interleave ways (ENIW) for the target count, `None` if not a valid count.
    pub fn eniw(&self) -> Option<u8> {
        Some(match self.targets.len() {
            1 => 0,
            2 => 1,
            4 => 2,
            8 => 3,
            16 => 4,
            3 => 8,
            6 => 9,
            12 => 10,
            _ => return None,
        })
    }
}

/// OEM identification written into every table header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OemIds {
    /// OEM ID (6 bytes, space padded).
    pub oem_id: [u8; 6],
    /// OEM Table ID (8 bytes, space padded).
    pub oem_table_id: [u8; 8],
    /// OEM Revision.
    pub oem_revision: u32,
}

impl Default for OemIds {
    fn default() -> Self {
        Self {
            oem_id: *b"CXLPT ",
            oem_table_id: *b"CXLPTVMM",
            oem_revision: 1,
        }
    }
}

impl OemIds {
    /// A bare table header (36 bytes, checksummed) for `signature` with these ids;
    /// Creator ID/Revision are acpi_tables' (`RVAT`, 0x01000000).
    pub(crate) fn sdt(&self, signature: [u8; 4], revision: u8) -> Sdt {
        Sdt::new(
            signature,
            SDT_HEADER_LEN,
            revision,
            self.oem_id,
            self.oem_table_id,
            self.oem_revision,
        )
    }
}

/// Size of the standard ACPI table header; CEDT subtables and SSDT AML follow it.
pub const SDT_HEADER_LEN: u32 = 36;

/// The whole guest CXL description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AcpiDescription {
    /// CXL host bridges, in CHBS / AML order.
    pub host_bridges: Vec<HostBridge>,
    /// Fixed memory windows, in CFMWS order.
    pub windows: Vec<CfmwsWindow>,
    /// Table header identification.
    pub oem: OemIds,
}

/// A named address range, for overlap checks.
struct Span {
    what: String,
    first: u64,
    last: u64,
}

impl AcpiDescription {
    /// Checks everything Linux (or the ACPI encodings) would reject or misread.
    pub fn validate(&self) -> Result<(), DescriptionError> {
        let bridges = &self.host_bridges;
        if bridges.is_empty() {
            return Err(DescriptionError::NoHostBridge);
        }
        if bridges.len() > MAX_HOST_BRIDGES {
            return Err(DescriptionError::TooManyHostBridges {
                count: bridges.len(),
                max: MAX_HOST_BRIDGES,
            });
        }
        let mut spans = Vec::new();
        for (i, hb) in bridges.iter().enumerate() {
            validate_bridge(hb, &mut spans)?;
            for other in &bridges[..i] {
                if other.uid == hb.uid {
                    return Err(DescriptionError::DuplicateUid(hb.uid));
                }
                if other.segment == hb.segment
                    && other.bus_start <= hb.bus_end
                    && hb.bus_start <= other.bus_end
                {
                    return Err(DescriptionError::BusOverlap {
                        segment: hb.segment,
                        a: other.uid,
                        b: hb.uid,
                    });
                }
            }
        }
        for (index, w) in self.windows.iter().enumerate() {
            self.validate_window(index, w)?;
            spans.push(Span {
                what: format!("window {index}"),
                first: w.base,
                last: w.base + (w.size - 1),
            });
        }
        for (i, a) in spans.iter().enumerate() {
            if let Some(b) = spans[..i]
                .iter()
                .find(|b| a.first <= b.last && b.first <= a.last)
            {
                return Err(DescriptionError::Overlap {
                    a: b.what.clone(),
                    b: a.what.clone(),
                });
            }
        }
        Ok(())
    }

    fn validate_window(&self, index: usize, w: &CfmwsWindow) -> Result<(), DescriptionError> {
        let count = w.targets.len();
        if w.eniw().is_none() {
            return Err(DescriptionError::InvalidWays { index, count });
        }
        for (i, &uid) in w.targets.iter().enumerate() {
            if !self.host_bridges.iter().any(|hb| hb.uid == uid) {
                return Err(DescriptionError::UnknownTarget { index, uid });
            }
            if w.targets[..i].contains(&uid) {
                return Err(DescriptionError::DuplicateTarget { index, uid });
            }
        }
        if !w.base.is_multiple_of(WINDOW_GRANULE) {
            return Err(DescriptionError::WindowBaseAlignment {
                index,
                base: w.base,
            });
        }
        // count <= 16, so this cannot overflow.
        let granule = WINDOW_GRANULE * count as u64;
        if w.size == 0 || !w.size.is_multiple_of(granule) {
            return Err(DescriptionError::WindowSize {
                index,
                size: w.size,
                granule,
            });
        }
        if w.base.checked_add(w.size - 1).is_none() {
            return Err(DescriptionError::WindowWraps {
                index,
                base: w.base,
                size: w.size,
            });
        }
        if w.restrictions.reserved() != 0 {
            return Err(DescriptionError::ReservedRestrictions {
                index,
                bits: w.restrictions.into_bits(),
            });
        }
        Ok(())
    }
}

/// Highest PCI device number on a bus.
const MAX_PCI_DEVICE: u8 = 31;
/// Highest INTx pin (INTD).
const MAX_INTX_PIN: u8 = 3;

fn validate_bridge(hb: &HostBridge, spans: &mut Vec<Span>) -> Result<(), DescriptionError> {
    let uid = hb.uid;
    if hb.bus_start > hb.bus_end {
        return Err(DescriptionError::EmptyBusRange {
            uid,
            start: hb.bus_start,
            end: hb.bus_end,
        });
    }
    for (i, r) in hb.intx_routes.iter().enumerate() {
        let dup = hb.intx_routes[..i]
            .iter()
            .any(|o| (o.device, o.pin) == (r.device, r.pin));
        if r.device > MAX_PCI_DEVICE || r.pin > MAX_INTX_PIN || dup {
            return Err(DescriptionError::BadIntxRoute {
                uid,
                device: r.device,
                pin: r.pin,
            });
        }
    }
    let chbcr_last = hb.chbcr_base.checked_add(CHBCR_SIZE - 1);
    match chbcr_last {
        Some(last) if hb.chbcr_base != 0 && hb.chbcr_base.is_multiple_of(CHBCR_SIZE) => {
            spans.push(Span {
                what: format!("CHBCR of host bridge UID {uid}"),
                first: hb.chbcr_base,
                last,
            });
        }
        _ => {
            return Err(DescriptionError::BadChbcrBase {
                uid,
                base: hb.chbcr_base,
            });
        }
    }
    for (kind, win, limit) in [
        ("mmio32", hb.mmio32, u64::from(u32::MAX)),
        ("mmio64", hb.mmio64, u64::MAX),
    ] {
        let Some(win) = win else { continue };
        match win.last() {
            Some(last) if last <= limit => spans.push(Span {
                what: format!("{kind} window of host bridge UID {uid}"),
                first: win.base,
                last,
            }),
            _ => {
                return Err(DescriptionError::BadMmioWindow {
                    uid,
                    kind,
                    base: win.base,
                    size: win.size,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "description_tests.rs"]
mod tests;
