//! CFMWS - CXL Fixed Memory Window Structure (CEDT subtable type 1).
//!
//! Encoded here rather than with `acpi_tables::cedt::CxlFixedMemory`, whose layout is
//! right but whose API cannot express every window: `cxl_type_3_memory()` sets the Type-2
//! bit, there is no back-invalidate bit, and a target-count mismatch panics
//! (`assert_eq!`) instead of returning an error. A unit test checks that both encoders
//! agree on the windows `acpi_tables` can express.

use crate::description::CfmwsWindow;

/// CEDT subtable type of a CFMWS.
const TYPE_CFMWS: u8 = 1;
/// Length of the fixed part; each target adds 4 bytes.
pub const CFMWS_FIXED_LEN: usize = 36;
/// Interleave Arithmetic: standard modulo (XOR would need a CXIMS).
const ARITHMETIC_MODULO: u8 = 0;

/// Encodes `w`; `None` if its target count is not an encodable way count.
///
/// | off | size | field |
/// |---|---|---|
/// | 0 | 1 | type 1 |
/// | 2 | 2 | record length 36 + 4 x NIW |
/// | 8 | 8 | base HPA |
/// | 16 | 8 | window size |
/// | 24 | 1 | ENIW |
/// | 25 | 1 | interleave arithmetic (0 modulo) |
/// | 28 | 4 | HBIG |
/// | 32 | 2 | window restrictions |
/// | 34 | 2 | QTG ID |
/// | 36 | 4 x NIW | target host-bridge UIDs |
pub fn encode_cfmws(w: &CfmwsWindow) -> Option<Vec<u8>> {
    let eniw = w.eniw()?;
    let len = CFMWS_FIXED_LEN + 4 * w.targets.len();
    let mut b = vec![0u8; CFMWS_FIXED_LEN];
    b[0] = TYPE_CFMWS;
    b[2..4].copy_from_slice(&u16::try_from(len).ok()?.to_le_bytes());
    b[8..16].copy_from_slice(&w.base.to_le_bytes());
    b[16..24].copy_from_slice(&w.size.to_le_bytes());
    b[24] = eniw;
    b[25] = ARITHMETIC_MODULO;
    b[28..32].copy_from_slice(&u32::from(w.granularity.encoding()).to_le_bytes());
    b[32..34].copy_from_slice(&w.restrictions.into_bits().to_le_bytes());
    b[34..36].copy_from_slice(&w.qtg_id.to_le_bytes());
    for uid in &w.targets {
        b.extend_from_slice(&uid.to_le_bytes());
    }
    Some(b)
}
