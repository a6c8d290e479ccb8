//! The device runtime: what a VMM instantiates for one passed-through CXL device.

pub mod bar_forward;
pub mod comp_regs;
pub mod desc;
pub mod device;
pub mod guest_reset;
pub mod hdm_lock;
pub mod hdm_view;
pub mod overlay;
pub mod probe;
pub mod probe_v4;
pub mod ratelimit;
pub mod report;
pub mod topology;

pub use comp_regs::CompRegs;
pub use desc::DeviceDesc;
pub use device::{CxlDevice, DeviceError, DeviceState, HookError, HookStep, MemoryHooks, NoHooks};
pub use hdm_lock::{
    DecoderLock, DecoderState, FirmwareDecoder, HdmLockError, LockStep, lock_decoder0,
    read_decoder0,
};
pub use overlay::Overlay;

#[cfg(test)]
mod tests;
