//! [`route_bar_access`]: for a VMM that traps its whole PCI device model's BAR accesses
//! (instead of registering [`super::register_component_bar`]), who answers one access
//! to the component BAR.

use crate::plan::BarPlan;
use crate::plan::bar::BarTarget;

/// Who answers an access to the component BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarAccess {
    /// The COMP_REGS overlay ([`crate::runtime::Overlay::read`] / `write`), at this
    /// component-block offset.
    Overlay(u64),
    /// The access starts before the component block and reaches into it: it must reach
    /// neither the overlay nor the device's real registers (reads all-ones, writes
    /// dropped).
    Straddles,
    /// The VMM's device model (the BAR region of the device).
    Device,
}

/// Routes an access of `len` bytes at BAR offset `offset`.
pub fn route_bar_access(plan: &BarPlan, offset: u64, len: usize) -> BarAccess {
    if let BarTarget::Overlay(block_offset) = plan.target(offset) {
        return BarAccess::Overlay(block_offset);
    }
    let last = offset.checked_add((len as u64).saturating_sub(1));
    match last.map(|l| plan.target(l)) {
        Some(BarTarget::Overlay(_)) => BarAccess::Straddles,
        _ => BarAccess::Device,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan_bar;

    #[test]
    fn accesses_route_to_the_overlay_the_device_or_nowhere() {
        // 128 KiB BAR, component block in the upper 64 KiB, the lower half mapped.
        let plan = plan_bar(0x2_0000, 0x1_0000, 0x1_0000, &[(0, 0x1_0000)], 4096).expect("plan");
        assert_eq!(route_bar_access(&plan, 0x1_0000, 4), BarAccess::Overlay(0));
        assert_eq!(
            route_bar_access(&plan, 0x1_1004, 4),
            BarAccess::Overlay(0x1004)
        );
        assert_eq!(route_bar_access(&plan, 0xfffc, 4), BarAccess::Device);
        assert_eq!(route_bar_access(&plan, 0xfffe, 4), BarAccess::Straddles);
        assert_eq!(route_bar_access(&plan, 0x100, 8), BarAccess::Device);
        assert_eq!(route_bar_access(&plan, u64::MAX, 8), BarAccess::Device);
    }
}
