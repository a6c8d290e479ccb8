//! CHBS - CXL Host Bridge Structure (CEDT subtable type 0), encoded by hand.
//!
//! `acpi_tables` 0.2.1 has a `CxlHostBridge`, but it writes a malformed record: the
//! 16-bit Record Length is emitted as a single byte and the reserved dword at offset 12 is
//! missing, so it produces 27 bytes while declaring 32 (and the CEDT length it reports
//! counts 32). Every following subtable is then misaligned. Do not use it.

use crate::description::CHBCR_SIZE;

/// CHBS record length.
pub const CHBS_LEN: usize = 32;
/// CEDT subtable type of a CHBS.
const TYPE_CHBS: u8 = 0;
/// CXL Version field: 1 = CXL 2.0-or-later host bridge, Base is the CHBCR.
const CXL_VERSION_2: u32 = 1;

/// Encodes a CXL 2.0+ CHBS: `uid`, version 1, `chbcr_base`, length 64 KiB.
///
/// | off | size | field |
/// |---|---|---|
/// | 0 | 1 | type 0 |
/// | 1 | 1 | reserved |
/// | 2 | 2 | record length 32 |
/// | 4 | 4 | UID |
/// | 8 | 4 | CXL version 1 |
/// | 12 | 4 | reserved |
/// | 16 | 8 | base |
/// | 24 | 8 | length 0x10000 |
pub fn encode_chbs(uid: u32, chbcr_base: u64) -> [u8; CHBS_LEN] {
    let mut b = [0u8; CHBS_LEN];
    b[0] = TYPE_CHBS;
    b[2..4].copy_from_slice(&(CHBS_LEN as u16).to_le_bytes());
    b[4..8].copy_from_slice(&uid.to_le_bytes());
    b[8..12].copy_from_slice(&CXL_VERSION_2.to_le_bytes());
    b[16..24].copy_from_slice(&chbcr_base.to_le_bytes());
    b[24..32].copy_from_slice(&CHBCR_SIZE.to_le_bytes());
    b
}
