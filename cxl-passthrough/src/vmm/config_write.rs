//! [`guest_config_write`]: a guest configuration-space write that may reset the device
//! (FLR through PCIe Device Control, CXL Reset through the CXL Device DVSEC) — the
//! kernel performs the reset, and decoder 0 must be locked again at the window before
//! the guest uses the device memory.

use log::{error, info};

use crate::errors::Chain;
use crate::runtime::guest_reset::{GuestReset, classify_config_write};
use crate::runtime::{CxlDevice, DecoderState, DeviceError, MemoryHooks};

/// A reset the guest started, and how re-locking after it went.
#[derive(Debug)]
pub struct GuestResetOutcome {
    /// Which reset.
    pub kind: GuestReset,
    /// Decoder 0 re-locked, or why the device is now fenced.
    pub relock: Result<DecoderState, DeviceError>,
}

/// Forwards a guest write of `data` at config offset `offset` (`forward` writes it to
/// the device) and, when it starts a reset, re-locks decoder 0 afterwards
/// ([`CxlDevice::relock_after_guest_reset`], with `hooks` around it). Returns what
/// `forward` returned, and the reset's outcome if the write started one.
pub fn guest_config_write<R>(
    dev: &CxlDevice,
    offset: u64,
    data: &[u8],
    hooks: &mut dyn MemoryHooks,
    forward: impl FnOnce() -> R,
) -> (R, Option<GuestResetOutcome>) {
    let kind = classify_config_write(dev.desc(), offset, data);
    let ret = forward();
    let outcome = kind.map(|kind| {
        info!("cxl: guest {kind:?}, re-locking HDM decoder 0");
        let relock = dev.relock_after_guest_reset(hooks);
        if let Err(e) = &relock {
            error!(
                "cxl: re-lock after {kind:?} failed, device fenced: {}",
                Chain(e)
            );
        }
        GuestResetOutcome { kind, relock }
    });
    (ret, outcome)
}
