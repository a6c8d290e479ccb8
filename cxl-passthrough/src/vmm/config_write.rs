//! Resets the guest starts: [`guest_config_write`] for a device configuration-space
//! write that resets the device (FLR through PCIe Device Control, CXL Reset through the
//! CXL Device DVSEC) — the kernel performs the reset — and [`secondary_bus_reset`] for a
//! Secondary Bus Reset the guest asserted on the emulated root port above the device —
//! the VMM performs it as `VFIO_DEVICE_RESET`. Both run one sequence: take the device
//! memory away from the guest, reset, re-lock decoder 0 at the window (or fence the
//! device), give the memory back.

use log::{error, info};

use crate::backend::ResetKind;
use crate::errors::Chain;
use crate::runtime::guest_reset::{GuestReset, classify_config_write};
use crate::runtime::{CxlDevice, DecoderState, DeviceError, HookError, MemoryHooks};

/// A reset the guest started, and how re-locking after it went.
#[derive(Debug)]
pub struct GuestResetOutcome {
    /// Which reset.
    pub kind: GuestReset,
    /// Whether the device memory was taken away from the guest before the reset (the
    /// reset is performed either way: the guest asked for it).
    pub quiesce: Result<(), HookError>,
    /// Decoder 0 re-locked (and the memory given back), or why the device is now fenced
    /// (the reset itself failed, or re-locking after it did).
    pub relock: Result<DecoderState, DeviceError>,
}

/// Forwards a guest write of `data` at config offset `offset` (`forward` writes it to
/// the device). When the write starts a reset, the device memory is first taken away
/// from the guest (`hooks.quiesce()`: the kernel resets, and v2 zaps, the memory other
/// vCPUs could still be using), and decoder 0 is re-locked afterwards
/// ([`CxlDevice::relock_after_guest_reset`], which gives the memory back). Returns what
/// `forward` returned, and the reset's outcome if the write started one.
pub fn guest_config_write<R>(
    dev: &CxlDevice,
    offset: u64,
    data: &[u8],
    hooks: &mut dyn MemoryHooks,
    forward: impl FnOnce() -> R,
) -> (R, Option<GuestResetOutcome>) {
    match classify_config_write(dev.desc(), offset, data) {
        None => (forward(), None),
        Some(kind) => {
            let (ret, outcome) = run_guest_reset(dev, kind, hooks, || (forward(), Ok(())));
            (ret, Some(outcome))
        }
    }
}

/// Resets the device below the emulated root port after the guest asserted Secondary
/// Bus Reset there with Unmask SBR set (a
/// [`ConfigWriteOutcome::secondary_bus_reset`](crate::rootport::ConfigWriteOutcome)),
/// exactly as [`guest_config_write`] handles a guest FLR: the device memory is taken
/// away from the guest, the device reset with `VFIO_DEVICE_RESET` (the kernel picks the
/// method: FLR, or its own bus reset), decoder 0 re-locked and the memory given back.
/// A failed `VFIO_DEVICE_RESET` leaves the device fenced (overlay all-ones, memory
/// away from the guest) and is reported in [`GuestResetOutcome::relock`].
///
/// Call it before the guest's next access to the device (from the root port's
/// configuration write handler: Linux deasserts SBR and then polls the device).
pub fn secondary_bus_reset(dev: &CxlDevice, hooks: &mut dyn MemoryHooks) -> GuestResetOutcome {
    let ((), outcome) = run_guest_reset(dev, GuestReset::SecondaryBusReset, hooks, || {
        (
            (),
            dev.backend()
                .reset(ResetKind::Device)
                .map_err(DeviceError::from),
        )
    });
    outcome
}

/// The one guest-reset sequence: quiesce, `perform` (which returns the caller's value
/// and whether the reset itself worked), then re-lock and restore, or fence.
fn run_guest_reset<R>(
    dev: &CxlDevice,
    kind: GuestReset,
    hooks: &mut dyn MemoryHooks,
    perform: impl FnOnce() -> (R, Result<(), DeviceError>),
) -> (R, GuestResetOutcome) {
    info!("cxl: guest {kind:?}: device memory taken away from the guest");
    let quiesce = hooks.quiesce().inspect_err(|e| {
        error!(
            "cxl: the VMM could not take the device memory away before the guest's \
             {kind:?}: {}",
            Chain(e)
        );
    });
    let (ret, reset) = perform();
    info!("cxl: guest {kind:?}, re-locking HDM decoder 0");
    let relock = dev.settle_guest_reset(hooks, reset);
    if let Err(e) = &relock {
        error!(
            "cxl: re-lock after {kind:?} failed, device fenced: {}",
            Chain(e)
        );
    }
    (
        ret,
        GuestResetOutcome {
            kind,
            quiesce,
            relock,
        },
    )
}
