//! [`cxl_ecam_slot`]: where a VMM that gives every PCI segment a one-bus ECAM slot puts
//! the two-bus ECAM of a CXL segment (root port on bus 0, the device on bus 1).

use std::ops::Range;

use super::{CXL_ECAM_SIZE, ECAM_BUS_SIZE};

/// ECAM base of the `index`-th CXL segment (1-based, in creation order) in the VMM's
/// MMCONFIG area `area`, whose bottom holds one [`ECAM_BUS_SIZE`] slot for each of its
/// `segments` PCI segments. CXL segments take [`CXL_ECAM_SIZE`] slots from the top of the
/// area downwards. `None` for index 0, or when the slot would reach the segments' slots
/// or leave the area.
///
/// Each CXL segment keeps a slot of its own (its own MCFG entry): arm64 Linux claims a
/// host bridge's ECAM range exclusively, so two host bridges must never share one.
///
/// ```
/// use cxl_passthrough::vmm::{CXL_ECAM_SIZE, cxl_ecam_slot};
/// // cloud-hypervisor's aarch64 MMCONFIG area, right below RAM at 1 GiB.
/// let area = 0x3000_0000..0x4000_0000;
/// assert_eq!(cxl_ecam_slot(&area, 2, 1), Some(0x4000_0000 - CXL_ECAM_SIZE));
/// ```
pub fn cxl_ecam_slot(area: &Range<u64>, segments: u64, index: u64) -> Option<u64> {
    if index == 0 || area.end <= area.start {
        return None;
    }
    let base = area.end.checked_sub(CXL_ECAM_SIZE.checked_mul(index)?)?;
    let lowest = area
        .start
        .checked_add(ECAM_BUS_SIZE.checked_mul(segments)?)?;
    (base >= lowest).then_some(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cloud-hypervisor's MMCONFIG areas (facts from its `arch` layouts).
    const X86_64: Range<u64> = 0xE800_0000..0xF800_0000;
    const AARCH64: Range<u64> = 0x3000_0000..0x4000_0000;
    const AARCH64_RAM_START: u64 = 0x4000_0000;

    #[test]
    fn slots_fill_the_area_from_the_top_above_the_segments() {
        for area in [X86_64, AARCH64] {
            let segments = 4;
            let lowest = area.start + ECAM_BUS_SIZE * segments;
            assert_eq!(cxl_ecam_slot(&area, segments, 0), None);
            let mut slots = Vec::new();
            let mut index = 1;
            while let Some(base) = cxl_ecam_slot(&area, segments, index) {
                assert!(
                    base >= lowest && base + CXL_ECAM_SIZE <= area.end,
                    "{base:#x}"
                );
                assert!(
                    slots
                        .last()
                        .is_none_or(|&prev| base + CXL_ECAM_SIZE <= prev)
                );
                slots.push(base);
                index += 1;
            }
            assert_eq!(slots[0], area.end - CXL_ECAM_SIZE);
            assert_eq!(slots.len() as u64, (area.end - lowest) / CXL_ECAM_SIZE);
        }
    }

    #[test]
    fn aarch64_the_top_slot_ends_where_ram_starts() {
        let top = cxl_ecam_slot(&AARCH64, 1, 1).unwrap();
        assert_eq!(top + CXL_ECAM_SIZE, AARCH64_RAM_START);
    }

    #[test]
    fn a_full_or_empty_area_is_refused_not_wrapped() {
        assert_eq!(
            cxl_ecam_slot(&AARCH64, 256, 1),
            None,
            "the segments take it all"
        );
        assert_eq!(cxl_ecam_slot(&AARCH64, 1, u64::MAX), None);
        assert_eq!(cxl_ecam_slot(&AARCH64, u64::MAX, 1), None);
        assert_eq!(cxl_ecam_slot(&(0..CXL_ECAM_SIZE), 0, 2), None);
        let reversed = Range { start: 10, end: 5 };
        assert_eq!(cxl_ecam_slot(&reversed, 0, 1), None);
    }
}
