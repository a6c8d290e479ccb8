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

/// Which trapped part of the component BAR a handler serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioPart {
    /// The component register block: the COMP_REGS overlay.
    ComponentRegisters,
    /// The n-th (from 0) range of the BAR forwarded to the device.
    ForwardedBar(usize),
}

impl std::fmt::Display for MmioPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ComponentRegisters => f.write_str("the component registers (overlay)"),
            Self::ForwardedBar(n) => write!(f, "forwarded component BAR range {n}"),
        }
    }
}

/// The VMM's MMIO bus.
pub trait MmioRegistry {
    /// The VMM's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Routes guest accesses to `[gpa, gpa + size)` to `handler`, which serves `part`.
    fn register(
        &mut self,
        part: MmioPart,
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
    let mut register = |part: MmioPart, start: u64, end: u64, handler: MmioHandler| {
        let gpa = bar_gpa
            .checked_add(start)
            .filter(|g| g.checked_add(end - start).is_some())
            .ok_or(VmmError::AddressOverflow {
                what: "component BAR range",
                base: bar_gpa,
                offset: start,
            })?;
        mmio.register(part, gpa, end - start, handler)
            .map_err(|e| VmmError::Mmio {
                part,
                gpa,
                size: end - start,
                source: HookError::new(e),
            })
    };
    register(
        MmioPart::ComponentRegisters,
        plan.overlay.start,
        plan.overlay.end,
        dev.overlay(),
    )?;
    let fwd = Arc::new(BarForward::new(
        dev.backend().clone(),
        dev.desc().bar.file_offset,
        plan.clone(),
    ));
    for (n, r) in plan.forwarded.iter().enumerate() {
        register(
            MmioPart::ForwardedBar(n),
            r.start,
            r.end,
            Arc::new(ForwardedRange::new(fwd.clone(), r.start)),
        )?;
    }
    Ok(())
}
