//! Trapped guest accesses: the [`MmioRegistry`] a VMM implements (its MMIO bus), and
//! [`register_component_bar`], which puts the trapped parts of a device's component BAR
//! on it — the COMP_REGS overlay over the component register block, and the
//! forwarding of the BAR's other non-mmap-able ranges to the device — and the
//! [`MmioHandler`] trait the VMM's bus device calls.

use std::sync::{Arc, Mutex, PoisonError};

use cxl_acpi::Chbcr;

use super::error::VmmError;
use crate::rootport::CxlRootPort;
use crate::runtime::bar_forward::{BarForward, ForwardedRange};
use crate::runtime::overlay::Overlay;
use crate::runtime::{CxlDevice, HookError};

/// A handler for trapped guest accesses to one registered range `[gpa, gpa + size)`:
/// `offset` is relative to `gpa`. The VMM's bus device calls it from its own read/write
/// path, so the facade carries no VMM's bus types. Handlers never fail: a failed
/// access reads all-ones and drops writes (and is logged, rate-limited).
///
/// With the `vm-device` feature, `VmDeviceMmio` puts any `Arc<dyn MmioHandler>` on
/// rust-vmm vm-device 0.1's `IoManager` (as a `DeviceMmio`).
pub trait MmioHandler: Send + Sync {
    /// Serves a guest read of `data.len()` bytes at `offset`.
    fn read(&self, offset: u64, data: &mut [u8]);
    /// Serves a guest write of `data` at `offset`.
    fn write(&self, offset: u64, data: &[u8]);
}

impl MmioHandler for Overlay {
    fn read(&self, offset: u64, data: &mut [u8]) {
        Overlay::read(self, offset, data);
    }
    fn write(&self, offset: u64, data: &[u8]) {
        Overlay::write(self, offset, data);
    }
}

impl MmioHandler for ForwardedRange {
    fn read(&self, offset: u64, data: &mut [u8]) {
        ForwardedRange::read(self, offset, data);
    }
    fn write(&self, offset: u64, data: &[u8]) {
        ForwardedRange::write(self, offset, data);
    }
}

/// The root port's component register block (offsets relative to its BAR).
impl MmioHandler for CxlRootPort {
    fn read(&self, offset: u64, data: &mut [u8]) {
        self.component_read(offset, data);
    }
    fn write(&self, offset: u64, data: &[u8]) {
        self.component_write(offset, data);
    }
}

/// The host bridge's CHBCR (offsets relative to the CHBS Base). A poisoned lock is
/// taken over: the block is plain register state that no panic leaves half-written.
impl MmioHandler for Mutex<Chbcr> {
    fn read(&self, offset: u64, data: &mut [u8]) {
        self.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .read(offset, data);
    }
    fn write(&self, offset: u64, data: &[u8]) {
        self.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(offset, data);
    }
}

/// An [`MmioHandler`] as a rust-vmm vm-device 0.1 `DeviceMmio`, for VMMs whose MMIO bus
/// is that crate's `IoManager` (the `base` it passes is ignored: offsets are already
/// relative to the registered range).
#[cfg(feature = "vm-device")]
#[derive(Clone)]
pub struct VmDeviceMmio(pub Arc<dyn MmioHandler>);

#[cfg(feature = "vm-device")]
impl vm_device::DeviceMmio for VmDeviceMmio {
    fn mmio_read(
        &self,
        _base: vm_device::bus::MmioAddress,
        offset: vm_device::bus::MmioAddressOffset,
        data: &mut [u8],
    ) {
        self.0.read(offset, data);
    }
    fn mmio_write(
        &self,
        _base: vm_device::bus::MmioAddress,
        offset: vm_device::bus::MmioAddressOffset,
        data: &[u8],
    ) {
        self.0.write(offset, data);
    }
}

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
        handler: Arc<dyn MmioHandler>,
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
    let mut register = |part: MmioPart, start: u64, end: u64, handler: Arc<dyn MmioHandler>| {
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
