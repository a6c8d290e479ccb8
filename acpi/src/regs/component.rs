//! The 64 KiB component register block and its CXL.cache/mem capability array.

use bitfield_struct::bitfield;
use thiserror::Error;

use super::hdm::{HdmCapability, hdm_block_size};

/// Size of a component register block (`CXL_COMPONENT_REG_BLOCK_SIZE`).
pub const COMPONENT_BLOCK_SIZE: u64 = 0x1_0000;
/// Offset of the CXL.cache/mem registers inside a component block (`CXL_CM_OFFSET`).
pub const CM_OFFSET: u64 = 0x1000;
/// Capability ID of the CXL capability header (array entry 0).
pub const CAP_ID_HEADER: u16 = 0x1;
/// Capability ID of the RAS capability.
pub const CAP_ID_RAS: u16 = 0x2;
/// Capability ID of the Link capability.
pub const CAP_ID_LINK: u16 = 0x4;
/// Capability ID of the HDM Decoder capability.
pub const CAP_ID_HDM: u16 = 0x5;
/// Length of the RAS capability structure.
pub const RAS_CAP_LEN: u64 = 0x58;

/// CXL Capability Header (CM base + 0x0).
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub struct CmCapHeader {
    /// Must be [`CAP_ID_HEADER`].
    pub cap_id: u16,
    /// CXL_Capability_Version (1).
    #[bits(4)]
    pub version: u8,
    /// CXL_Cache_Mem_Version (1).
    #[bits(4)]
    pub cm_version: u8,
    /// Number of capability-array entries following the header.
    pub array_size: u8,
}

/// One capability-array entry (CM base + 4·i, i = 1..=array_size).
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub struct CmCapEntry {
    /// Capability ID (see `CAP_ID_*`).
    pub cap_id: u16,
    /// Structure version.
    #[bits(4)]
    pub version: u8,
    /// Byte offset of the structure from the CM base (not scaled).
    #[bits(12)]
    pub pointer: u16,
}

/// Where the HDM decoder block was found by [`find_hdm_block`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HdmLocation {
    /// Offset of the HDM block relative to the base given to the walk.
    pub offset: u64,
    /// Decoder count as Linux and every kernel revision decode it (`f ? 2f : 1`).
    pub decoder_count: u32,
    /// The raw HDM Decoder Capability register.
    pub capability: HdmCapability,
}

impl HdmLocation {
    /// Size in bytes of the HDM block (`0x10 + 0x20 × count`).
    pub fn block_size(&self) -> u64 {
        hdm_block_size(self.decoder_count)
    }
}

/// Why the capability-array walk failed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WalkError<E> {
    /// A dword read failed.
    #[error("component register read at {offset:#x} failed")]
    Read {
        /// Offset of the failed read, relative to the walk base.
        offset: u64,
        /// The reader's error.
        source: E,
    },
    /// The capability header's ID is not 1.
    #[error("CXL capability header has id {0:#x}, expected 1")]
    BadHeader(u16),
    /// The array lists no HDM decoder capability.
    #[error("no HDM decoder capability (id 5) in the capability array")]
    NoHdm,
    /// The HDM capability pointer is zero or leaves no room for the HDM block.
    #[error("HDM capability pointer {pointer:#x} is invalid for a {limit:#x}-byte area")]
    BadPointer {
        /// Pointer from the array entry.
        pointer: u64,
        /// Size of the area the walk may read.
        limit: u64,
    },
    /// The HDM Capability register reads as all-ones (device absent or fenced).
    #[error("HDM capability register reads all-ones")]
    AllOnes,
}

/// Walks the CXL.cache/mem capability array and locates the HDM decoder block.
///
/// `read(off)` returns the dword at `off` (relative to the same base as `cm_base`);
/// `cm_base` is where the CXL capability header sits (0 for a v2 COMP_REGS region,
/// 0x1000 for a v3 region or a raw component block); `limit` bounds every read and the
/// HDM block. Only the first HDM entry counts, as in Linux.
pub fn find_hdm_block<E>(
    mut read: impl FnMut(u64) -> Result<u32, E>,
    cm_base: u64,
    limit: u64,
) -> Result<HdmLocation, WalkError<E>> {
    let mut rd = |offset: u64| read(offset).map_err(|source| WalkError::Read { offset, source });
    let header = CmCapHeader::from_bits(rd(cm_base)?);
    if header.cap_id() != CAP_ID_HEADER {
        return Err(WalkError::BadHeader(header.cap_id()));
    }
    for i in 1..=u64::from(header.array_size()) {
        let entry_off = cm_base + 4 * i;
        if entry_off + 4 > limit {
            break;
        }
        let entry = CmCapEntry::from_bits(rd(entry_off)?);
        if entry.cap_id() != CAP_ID_HDM {
            continue;
        }
        let pointer = u64::from(entry.pointer());
        let offset = cm_base + pointer;
        if pointer == 0 || offset + hdm_block_size(1) > limit {
            return Err(WalkError::BadPointer { pointer, limit });
        }
        let raw = rd(offset)?;
        if raw == u32::MAX {
            return Err(WalkError::AllOnes);
        }
        let capability = HdmCapability::from_bits(raw);
        let decoder_count = capability.linux_decoder_count();
        if offset + hdm_block_size(decoder_count) > limit {
            return Err(WalkError::BadPointer { pointer, limit });
        }
        return Ok(HdmLocation {
            offset,
            decoder_count,
            capability,
        });
    }
    Err(WalkError::NoHdm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(words: &[(u64, u32)]) -> impl FnMut(u64) -> Result<u32, ()> + '_ {
        move |off| Ok(words.iter().find(|(o, _)| *o == off).map_or(0, |(_, v)| *v))
    }

    #[test]
    fn synthetic_example_from_spec() {
        // spec §3.4: header 0x02110001, RAS at 0x100, HDM at 0x200, one decoder.
        let w = [
            (0, 0x0211_0001),
            (4, 0x1002_0002),
            (8, 0x2001_0005),
            (0x200, 0),
        ];
        let loc = find_hdm_block(image(&w), 0, 0x230).unwrap();
        assert_eq!(loc.offset, 0x200);
        assert_eq!(loc.decoder_count, 1);
        assert_eq!(loc.block_size(), 0x30);
        let w3: Vec<_> = w.iter().map(|(o, v)| (o + 0x1000, *v)).collect();
        let loc = find_hdm_block(image(&w3), 0x1000, 0x10000).unwrap();
        assert_eq!(loc.offset, 0x1200);
    }

    #[test]
    fn hostile_arrays() {
        assert_eq!(
            find_hdm_block(image(&[(0, 7)]), 0, 0x100),
            Err(WalkError::BadHeader(7))
        );
        assert_eq!(
            find_hdm_block(image(&[(0, 0x0111_0001)]), 0, 0x100),
            Err(WalkError::NoHdm)
        );
        // HDM pointer 0
        let w = [(0, 0x0111_0001), (4, 0x0001_0005)];
        assert!(matches!(
            find_hdm_block(image(&w), 0, 0x100),
            Err(WalkError::BadPointer { .. })
        ));
        // HDM block beyond the limit
        let w = [(0, 0x0111_0001), (4, 0xFF01_0005)];
        assert!(matches!(
            find_hdm_block(image(&w), 0, 0x100),
            Err(WalkError::BadPointer { .. })
        ));
        // all-ones capability
        let w = [(0, 0x0111_0001), (4, 0x0201_0005), (0x20, u32::MAX)];
        assert_eq!(find_hdm_block(image(&w), 0, 0x100), Err(WalkError::AllOnes));
        // 255 entries, array runs past the limit: stops without reading out of bounds.
        let mut seen_max = 0;
        let r = find_hdm_block(
            |o| {
                seen_max = seen_max.max(o);
                Ok::<_, ()>(if o == 0 { 0xFF11_0001 } else { 0 })
            },
            0,
            0x40,
        );
        assert_eq!(r, Err(WalkError::NoHdm));
        assert!(seen_max < 0x40);
        // read error is carried with its offset
        assert_eq!(
            find_hdm_block(|_| Err::<u32, _>("eio"), 0, 0x100),
            Err(WalkError::Read {
                offset: 0,
                source: "eio"
            })
        );
    }
}
