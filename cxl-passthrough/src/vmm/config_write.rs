//! [`guest_config_write`]: a guest configuration-space write that may reset the device
//! (FLR through PCIe Device Control, CXL Reset through the CXL Device DVSEC) — the
//! kernel performs the reset, and decoder 0 must be locked again at the window before
//! the guest uses the device memory.

use log::{error, info};

use crate::errors::Chain;
use crate::runtime::guest_reset::{GuestReset, classify_config_write};
use crate::runtime::{CxlDevice, DecoderState, DeviceError, HookError, MemoryHooks};

/// A reset the guest started, and how re-locking after it went.
#[derive(Debug)]
pub struct GuestResetOutcome {
    /// Which reset.
    pub kind: GuestReset,
    /// Whether the device memory was taken away from the guest before the reset (the
    /// reset is forwarded either way: the guest asked for it).
    pub quiesce: Result<(), HookError>,
    /// Decoder 0 re-locked (and the memory given back), or why the device is now fenced.
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
    let kind = classify_config_write(dev.desc(), offset, data);
    let quiesce = kind.map(|kind| {
        info!("cxl: guest {kind:?}: device memory taken away from the guest");
        hooks.quiesce().inspect_err(|e| {
            error!(
                "cxl: the VMM could not take the device memory away before the guest's \
                 {kind:?}: {}",
                Chain(e)
            );
        })
    });
    let ret = forward();
    let outcome = kind.zip(quiesce).map(|(kind, quiesce)| {
        info!("cxl: guest {kind:?}, re-locking HDM decoder 0");
        let relock = dev.relock_after_guest_reset(hooks);
        if let Err(e) = &relock {
            error!(
                "cxl: re-lock after {kind:?} failed, device fenced: {}",
                Chain(e)
            );
        }
        GuestResetOutcome {
            kind,
            quiesce,
            relock,
        }
    });
    (ret, outcome)
}
