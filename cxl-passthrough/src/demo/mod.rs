//! The KVM demo: a real VM whose guest uses a passed-through CXL device the way a guest
//! driver would, with the host checking every step.
//!
//! - [`layout`]: the guest physical address space and identity page tables (pure).
//! - [`guest`]: the guest program, generated at run time with iced-x86 (pure).
//! - [`harness`]: the VM (kvm-ioctls, vm-memory, vm-device), exit accounting.
//! - [`stubs`]: small MMIO devices (the no-op baseline, fixed registers).

pub mod guest;
pub mod harness;
pub mod layout;
pub mod memcheck;
pub mod stubs;
