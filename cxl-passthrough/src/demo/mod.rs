//! The KVM demo: a real VM whose guest uses a passed-through CXL device the way a guest
//! driver would, with the host checking every step.
//!
//! - [`entry`]: [`run`] for the CLI, simulated devices.
//! - [`layout`]: the guest physical address space and identity page tables (pure).
//! - [`guest`]: the guest program, generated at run time with iced-x86 (pure).
//! - [`harness`]: the VM (kvm-ioctls, vm-memory, vm-device), exit accounting.
//! - [`scenario`]: devices → probe → lock → map → VM → guest → checks.
//! - [`report`]: the [`report::DemoReport`] (text and JSON).
//! - [`memcheck`]: host-side pattern writing/checking on guest-visible memory.
//! - [`memory`]: host memory a run needs against what the host has available.
//! - [`stubs`]: small MMIO devices (the no-op baseline, fixed registers).

pub mod entry;
pub mod guest;
pub mod harness;
pub mod layout;
pub mod memcheck;
pub mod memory;
pub mod report;
pub mod scenario;
pub mod stubs;
mod verify;

#[cfg(feature = "sim")]
pub use entry::sim_devices;
pub use entry::{RunOptions, run};
pub use report::DemoReport;
pub use scenario::{DemoDevice, DemoError, DemoOptions, run_devices};
