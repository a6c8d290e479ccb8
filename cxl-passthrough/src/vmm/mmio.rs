//! Trapped guest accesses: the [`MmioRegistry`] a VMM implements (its MMIO bus), and
//! [`register_component_bar`], which puts the trapped parts of a device's component BAR
//! on it — the COMP_REGS overlay over the component register block, and the
//! forwarding of the BAR's other non-mmap-able ranges to the device.

use std::sync::Arc;

use vm_device::DeviceMmio;

use super::error::VmmError;
use crate::runtime::bar_forward::{BarForward, ForwardedRange};
use crate::runtime::{CxlDevice, HookError};

/// An MMIO handler the VMM calls for guest accesses to `[gpa, gpa + size)`
/// (model: rust-vmm vm-device's `MmioManager::register_mmio`). The handler's `base` is
/// `gpa` and its `offset` is relative to it.
pub type MmioHandler = Arc<dyn DeviceMmio + Send + Sync>;

/// The VMM's MMIO bus.
pub trait MmioRegistry {
    /// The VMM's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Routes guest accesses to `[gpa, gpa + size)` to `handler`; `what` names it for
    /// logs.
    fn register(
        &mut self,
        what: &str,
        gpa: u64,
        size: u64,
        handler: MmioHandler,
    ) -> Result<(), Self::Error>;
}

/// Registers the trapped parts of the component BAR of `dev`, with the BAR at
/// `bar_gpa`: the overlay over the component register block, then each range forwarded
/// to the device. (The BAR's directly mapped areas are memory:
/// [`super::GuestMapping::bar_areas`].)
pub fn register_component_bar(
    dev: &CxlDevice,
    bar_gpa: u64,
    mmio: &mut impl MmioRegistry,
) -> Result<(), VmmError> {
    let plan = dev.bar_plan();
    let mut register = |what: &'static str, start: u64, end: u64, handler: MmioHandler| {
        let gpa = bar_gpa.checked_add(start).ok_or_else(|| VmmError::Mmio {
            what,
            gpa: bar_gpa,
            size: end - start,
            source: HookError::new("BAR address + offset overflows"),
        })?;
        mmio.register(what, gpa, end - start, handler)
            .map_err(|e| VmmError::Mmio {
                what,
                gpa,
                size: end - start,
                source: HookError::new(e),
            })
    };
    register(
        "component registers (overlay)",
        plan.overlay.start,
        plan.overlay.end,
        dev.overlay(),
    )?;
    let fwd = Arc::new(BarForward::new(
        dev.backend().clone(),
        dev.desc().bar.file_offset,
        plan.clone(),
    ));
    for r in &plan.forwarded {
        register(
            "component BAR (forwarded)",
            r.start,
            r.end,
            Arc::new(ForwardedRange::new(fwd.clone(), r.start)),
        )?;
    }
    Ok(())
}
