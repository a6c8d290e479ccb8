//! The root port's own 64 KiB component register block (behind BAR 0).
//!
//! Linux reads a root port's block only to find its RAS capability (6.12 tolerates a
//! missing block, 7.3 requires the Register Locator entry and maps the block); it never
//! uses HDM decoders of a root port (host-bridge and switch decoders route, a root
//! port's do not). So the block holds the CXL.cache/mem capability header and one RAS
//! capability whose registers all read 0 (no error logged, nothing masked), and no HDM
//! Decoder capability. Every register is read-only: guest writes are ignored.
//!
//! Reads of any size and alignment return the little-endian register bytes, zero for
//! reserved space and all-ones past the block.

use crate::regs::component::{
    CAP_ID_HEADER, CAP_ID_RAS, CM_OFFSET, COMPONENT_BLOCK_SIZE, CmCapEntry, CmCapHeader,
};

/// Version of the CXL Capability header and of the CXL.cache/mem registers.
pub const CM_VERSION: u8 = 1;
/// Version of the RAS capability structure.
pub const RAS_VERSION: u8 = 2;
/// Offset of the RAS capability from the CXL.cache/mem base (the array pointer).
pub const RAS_POINTER: u16 = 0x40;
/// Number of capability-array entries after the header.
pub const ARRAY_SIZE: u8 = 1;

/// Value of the dword at block offset `offset` (must be 4-byte aligned).
pub fn read_dword(offset: u64) -> u32 {
    if offset == CM_OFFSET {
        CmCapHeader::new()
            .with_cap_id(CAP_ID_HEADER)
            .with_version(CM_VERSION)
            .with_cm_version(CM_VERSION)
            .with_array_size(ARRAY_SIZE)
            .into_bits()
    } else if offset == CM_OFFSET + 4 {
        CmCapEntry::new()
            .with_cap_id(CAP_ID_RAS)
            .with_version(RAS_VERSION)
            .with_pointer(RAS_POINTER)
            .into_bits()
    } else {
        // CXL.io part, RAS registers (no errors, nothing masked) and reserved space.
        0
    }
}

/// Reads `data.len()` bytes at block offset `offset`.
pub fn read(offset: u64, data: &mut [u8]) {
    for (i, byte) in data.iter_mut().enumerate() {
        *byte = offset
            .checked_add(i as u64)
            .filter(|o| *o < COMPONENT_BLOCK_SIZE)
            .map_or(0xFF, |o| (read_dword(o - o % 4) >> (8 * (o % 4))) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regs::component::{RAS_CAP_LEN, WalkError, find_hdm_block};

    #[test]
    fn linux_probe_sees_ras_and_no_hdm() {
        let rd = |o: u64| Ok::<_, ()>(read_dword(o));
        // The capability array is valid, lists no HDM capability.
        assert_eq!(
            find_hdm_block(rd, CM_OFFSET, COMPONENT_BLOCK_SIZE),
            Err(WalkError::NoHdm)
        );
        let h = CmCapHeader::from_bits(read_dword(CM_OFFSET));
        assert_eq!((h.cap_id(), h.array_size()), (1, 1));
        let e = CmCapEntry::from_bits(read_dword(CM_OFFSET + 4));
        assert_eq!(e.cap_id(), CAP_ID_RAS);
        let ras = CM_OFFSET + u64::from(e.pointer());
        assert!(ras + RAS_CAP_LEN <= COMPONENT_BLOCK_SIZE);
        for o in (ras..ras + RAS_CAP_LEN).step_by(4) {
            assert_eq!(read_dword(o), 0, "RAS register {o:#x}");
        }
    }

    #[test]
    fn unaligned_and_out_of_range_reads() {
        let mut b = [0u8; 3];
        read(CM_OFFSET + 1, &mut b);
        assert_eq!(b, [0x00, 0x11, 0x01]);
        let mut b = [0u8; 4];
        read(COMPONENT_BLOCK_SIZE - 2, &mut b);
        assert_eq!(b, [0, 0, 0xFF, 0xFF]);
        read(u64::MAX - 1, &mut b);
        assert_eq!(b, [0xFF; 4]);
    }
}
