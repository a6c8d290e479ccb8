//! CEDT - CXL Early Discovery Table: header from `acpi_tables`, subtables encoded here.

mod cfmws;
mod chbs;

pub use cfmws::encode_cfmws;
pub use chbs::{CHBS_LEN, encode_chbs};

use crate::description::AcpiDescription;
use crate::error::DescriptionError;

/// CEDT revision written (QEMU and Linux use 1; revision 2 only adds CSDS).
pub const CEDT_REVISION: u8 = 1;

/// Builds the CEDT for `topology`: one CHBS (CXL 2.0+, 64 KiB CHBCR) per host bridge in
/// order, then one CFMWS per window in order. The checksum makes the bytes sum to 0.
pub fn build_cedt(topology: &AcpiDescription) -> Result<Vec<u8>, DescriptionError> {
    topology.validate()?;
    let mut sdt = topology.oem.sdt(*b"CEDT", CEDT_REVISION);
    for hb in &topology.host_bridges {
        sdt.append_slice(&encode_chbs(hb.uid, hb.chbcr_base));
    }
    for (index, w) in topology.windows.iter().enumerate() {
        // validate() accepted the way count, so this cannot fail; stay typed anyway.
        let bytes = encode_cfmws(w).ok_or(DescriptionError::InvalidWays {
            index,
            count: w.targets.len(),
        })?;
        sdt.append_slice(&bytes);
    }
    let bytes = sdt.as_slice().to_vec();
    log::debug!(
        "CEDT: {} bytes, {} CHBS, {} CFMWS",
        bytes.len(),
        topology.host_bridges.len(),
        topology.windows.len()
    );
    Ok(bytes)
}

#[cfg(test)]
mod tests;
