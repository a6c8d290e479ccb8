//! PCI configuration-space constants and the extended-capability walk.

use bitfield_struct::bitfield;
use thiserror::Error;

use super::dvsec::DvsecHeader1;

/// Size of PCIe configuration space.
pub const CONFIG_SPACE_SIZE: u16 = 0x1000;
/// First extended capability.
pub const EXT_CAP_START: u16 = 0x100;
/// Extended capability ID of a DVSEC.
pub const EXT_CAP_ID_DVSEC: u16 = 0x23;
/// Offset of the Vendor ID register.
pub const VENDOR_ID: u16 = 0x00;
/// Offset of the Command register.
pub const COMMAND: u16 = 0x04;
/// Command register: Memory Space Enable.
pub const COMMAND_MEMORY: u16 = 1 << 1;
/// Offset of the Class Code (revision id at 0x08, class code bytes 0x09..0x0B).
pub const CLASS_REVISION: u16 = 0x08;
/// Offset of BAR 0; BAR n is at `0x10 + 4n`.
pub const BAR0: u16 = 0x10;
/// BAR type bits: 64-bit memory (bit 3, prefetchable, clear).
pub const BAR_TYPE_MEM64: u32 = 0b100;
/// Offset of the capability pointer.
pub const CAPABILITY_POINTER: u16 = 0x34;
/// Status register bit: capability list present.
pub const STATUS_CAP_LIST: u16 = 1 << 4;

/// PCIe extended capability header.
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub struct ExtCapHeader {
    /// Capability ID.
    pub id: u16,
    /// Capability version.
    #[bits(4)]
    pub version: u8,
    /// Offset of the next capability (0 = end).
    #[bits(12)]
    pub next: u16,
}

/// A located DVSEC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DvsecLocation {
    /// Offset of the DVSEC in configuration space.
    pub offset: u16,
    /// DVSEC revision.
    pub revision: u8,
    /// DVSEC length in bytes.
    pub length: u16,
}

/// Why an extended-capability walk failed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ExtCapError<E> {
    /// A read failed.
    #[error("config read at {offset:#x} failed")]
    Read {
        /// Offset of the failed read.
        offset: u16,
        /// The reader's error.
        source: E,
    },
    /// The chain revisits an offset or points backwards.
    #[error("extended capability chain loops at {0:#x}")]
    Loop(u16),
    /// A pointer is unaligned or outside extended configuration space.
    #[error("extended capability pointer {0:#x} is invalid")]
    BadPointer(u16),
    /// A DVSEC's length runs past the end of configuration space or is too short.
    #[error("DVSEC at {offset:#x} has invalid length {length:#x}")]
    BadLength {
        /// DVSEC offset.
        offset: u16,
        /// Declared length.
        length: u16,
    },
}

/// Finds the DVSEC with `vendor` and `id`, reading dwords with `read(off)`.
///
/// Returns `Ok(None)` when the chain ends without a match. The walk visits at most
/// (4096 − 256) / 4 capabilities and rejects loops, backward or unaligned pointers.
pub fn find_dvsec<E>(
    mut read: impl FnMut(u16) -> Result<u32, E>,
    vendor: u16,
    id: u16,
) -> Result<Option<DvsecLocation>, ExtCapError<E>> {
    let mut rd = |offset: u16| read(offset).map_err(|source| ExtCapError::Read { offset, source });
    let mut pos = EXT_CAP_START;
    let mut prev = 0u16;
    loop {
        if !pos.is_multiple_of(4) || !(EXT_CAP_START..CONFIG_SPACE_SIZE - 4).contains(&pos) {
            return Err(ExtCapError::BadPointer(pos));
        }
        if pos <= prev {
            return Err(ExtCapError::Loop(pos));
        }
        let raw = rd(pos)?;
        if raw == 0 || raw == u32::MAX {
            return Ok(None);
        }
        let hdr = ExtCapHeader::from_bits(raw);
        if hdr.id() == EXT_CAP_ID_DVSEC && pos + 0x0A <= CONFIG_SPACE_SIZE {
            let h1 = DvsecHeader1::from_bits(rd(pos + 4)?);
            let h2 = rd(pos + 8)? as u16;
            if h1.vendor() == vendor && h2 == id {
                let length = h1.length();
                if length < 0x0A
                    || u32::from(pos) + u32::from(length) > u32::from(CONFIG_SPACE_SIZE)
                {
                    return Err(ExtCapError::BadLength {
                        offset: pos,
                        length,
                    });
                }
                return Ok(Some(DvsecLocation {
                    offset: pos,
                    revision: h1.revision(),
                    length,
                }));
            }
        }
        if hdr.next() == 0 {
            return Ok(None);
        }
        prev = pos;
        pos = hdr.next();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regs::dvsec::{CXL_VENDOR_ID, DVSEC_ID_CXL_DEVICE, DVSEC_ID_REGISTER_LOCATOR};

    fn cfg(words: &[(u16, u32)]) -> impl FnMut(u16) -> Result<u32, ()> + '_ {
        move |o| Ok(words.iter().find(|(x, _)| *x == o).map_or(0, |(_, v)| *v))
    }

    #[test]
    fn finds_second_dvsec() {
        let w = [
            (0x100, 0x1801_0023),
            (0x104, 0x03C2_1E98),
            (0x108, 0),
            (0x180, 0x0001_0023),
            (0x184, 0x0140_1E98),
            (0x188, 8),
        ];
        let d = find_dvsec(cfg(&w), CXL_VENDOR_ID, DVSEC_ID_REGISTER_LOCATOR)
            .unwrap()
            .unwrap();
        assert_eq!(
            d,
            DvsecLocation {
                offset: 0x180,
                revision: 0,
                length: 0x14
            }
        );
        let d = find_dvsec(cfg(&w), CXL_VENDOR_ID, DVSEC_ID_CXL_DEVICE)
            .unwrap()
            .unwrap();
        assert_eq!(d.length, 0x3C);
        assert_eq!(find_dvsec(cfg(&w), CXL_VENDOR_ID, 3).unwrap(), None);
    }

    #[test]
    fn hostile_chains() {
        // self loop
        let w = [(0x100, 0x1001_0001)];
        assert_eq!(
            find_dvsec(cfg(&w), CXL_VENDOR_ID, 0),
            Err(ExtCapError::Loop(0x100))
        );
        // unaligned
        let w = [(0x100, 0x1021_0001)];
        assert_eq!(
            find_dvsec(cfg(&w), CXL_VENDOR_ID, 0),
            Err(ExtCapError::BadPointer(0x102))
        );
        // length past end
        let w = [
            (0xFF0, 0x0001_0023),
            (0xFF4, 0x0400_1E98),
            (0x100, 0xFF01_0001),
        ];
        assert!(matches!(
            find_dvsec(cfg(&w), CXL_VENDOR_ID, 0),
            Err(ExtCapError::BadLength { .. } | ExtCapError::BadPointer(_))
        ));
        // all-ones config space (device gone)
        assert_eq!(
            find_dvsec(|_| Ok::<_, ()>(u32::MAX), CXL_VENDOR_ID, 0),
            Ok(None)
        );
    }
}

/// Capability ID of the PCI Express capability.
pub const CAP_ID_PCIE: u8 = 0x10;
/// Offset of Device Control inside the PCI Express capability.
pub const PCIE_DEVICE_CONTROL: u16 = 0x08;
/// Device Control: Initiate Function Level Reset (bit 15).
pub const PCIE_DEVCTL_BCR_FLR: u16 = 1 << 15;

/// Finds standard capability `id` in the capability list, reading bytes with `read(off)`.
///
/// Returns `Ok(None)` when the list ends without it. At most 48 entries are visited;
/// pointers below 0x40 or revisiting an entry end the walk as malformed.
pub fn find_cap<E>(
    mut read: impl FnMut(u16) -> Result<u8, E>,
    id: u8,
) -> Result<Option<u16>, ExtCapError<E>> {
    let mut rd = |offset: u16| read(offset).map_err(|source| ExtCapError::Read { offset, source });
    let mut pos = u16::from(rd(CAPABILITY_POINTER)? & !3);
    let mut seen = 0u64;
    for _ in 0..48 {
        if pos == 0 {
            return Ok(None);
        }
        if !(0x40..=0xFC).contains(&pos) {
            return Err(ExtCapError::BadPointer(pos));
        }
        let bit = 1u64 << ((pos - 0x40) / 4);
        if seen & bit != 0 {
            return Err(ExtCapError::Loop(pos));
        }
        seen |= bit;
        if rd(pos)? == id {
            return Ok(Some(pos));
        }
        pos = u16::from(rd(pos + 1)? & !3);
    }
    Err(ExtCapError::Loop(pos))
}

#[cfg(test)]
mod cap_tests {
    use super::*;

    #[test]
    fn standard_capability_walk() {
        let cfg = |bytes: &'static [(u16, u8)]| {
            move |o: u16| Ok::<_, ()>(bytes.iter().find(|(x, _)| *x == o).map_or(0, |b| b.1))
        };
        let list: &[(u16, u8)] = &[
            (0x34, 0x40),
            (0x40, 0x01),
            (0x41, 0x50),
            (0x50, 0x10),
            (0x51, 0),
        ];
        assert_eq!(find_cap(cfg(list), CAP_ID_PCIE), Ok(Some(0x50)));
        assert_eq!(find_cap(cfg(list), 0x05), Ok(None));
        let looped: &[(u16, u8)] = &[(0x34, 0x40), (0x40, 0x01), (0x41, 0x40)];
        assert_eq!(
            find_cap(cfg(looped), CAP_ID_PCIE),
            Err(ExtCapError::Loop(0x40))
        );
        let low: &[(u16, u8)] = &[(0x34, 0x10)];
        assert_eq!(
            find_cap(cfg(low), CAP_ID_PCIE),
            Err(ExtCapError::BadPointer(0x10))
        );
        // An all-ones config space (device gone) ends as a loop, not a hang.
        assert_eq!(
            find_cap(|_| Ok::<_, ()>(0xFF), CAP_ID_PCIE),
            Err(ExtCapError::Loop(0xFC))
        );
    }
}
