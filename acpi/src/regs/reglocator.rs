//! Register Locator DVSEC (DVSEC ID 8).

use bitfield_struct::bitfield;

/// Offset of the first Register Block entry in the DVSEC.
pub const FIRST_ENTRY: u16 = 0x0C;
/// Size of one Register Block entry (Offset Low + Offset High).
pub const ENTRY_SIZE: u16 = 8;
/// Register Block Identifier of the component registers.
pub const BLOCK_ID_COMPONENT: u8 = 0x01;
/// Register Block Identifier of the CXL memory device registers.
pub const BLOCK_ID_MEMDEV: u8 = 0x03;

/// Register Offset Low of a Register Block entry.
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub struct RegBlockLo {
    /// BAR indicator (0..5).
    #[bits(3)]
    pub bir: u8,
    #[bits(5)]
    __: u8,
    /// Register Block Identifier.
    pub block_id: u8,
    /// Offset bits 31:16.
    pub offset_31_16: u16,
}

/// A decoded Register Block entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegisterBlock {
    /// BAR index.
    pub bar: u8,
    /// Register Block Identifier.
    pub block_id: u8,
    /// Offset of the block in the BAR (64 KiB aligned).
    pub offset: u64,
}

impl RegisterBlock {
    /// Decodes an entry from its two dwords.
    pub fn decode(lo: u32, hi: u32) -> Self {
        let l = RegBlockLo::from_bits(lo);
        Self {
            bar: l.bir(),
            block_id: l.block_id(),
            offset: (u64::from(hi) << 32) | u64::from(l.offset_31_16()) << 16,
        }
    }

    /// Encodes this entry as (Offset Low, Offset High). Offset bits 15:0 are dropped.
    pub fn encode(&self) -> (u32, u32) {
        let lo = RegBlockLo::new()
            .with_bir(self.bar & 7)
            .with_block_id(self.block_id)
            .with_offset_31_16((self.offset >> 16) as u16);
        (lo.into_bits(), (self.offset >> 32) as u32)
    }

    /// Number of entries in a Register Locator DVSEC of `length` bytes.
    pub fn count(length: u16) -> u16 {
        length.saturating_sub(FIRST_ENTRY) / ENTRY_SIZE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn roundtrip(bar in 0u8..6, id: u8, off in any::<u64>()) {
            let b = RegisterBlock { bar, block_id: id, offset: off & !0xFFFF };
            let (lo, hi) = b.encode();
            prop_assert_eq!(RegisterBlock::decode(lo, hi), b);
        }
    }

    #[test]
    fn count() {
        assert_eq!(RegisterBlock::count(0x24), 3);
        assert_eq!(RegisterBlock::count(0x14), 1);
        assert_eq!(RegisterBlock::count(0), 0);
    }
}
