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
//!
//! The VM runs on x86-64 hosts only (the guest is x86-64 code in long mode, set up
//! through x86 vCPU registers): elsewhere the crate builds, the pure parts work, and
//! [`harness`] refuses with [`unsupported_arch`]'s reason.

pub mod entry;
pub mod guest;
pub mod harness;
#[allow(unsafe_code)]
mod kvm;
pub mod layout;
pub mod memcheck;
pub mod memory;
pub mod report;
pub mod scenario;
pub mod stubs;
mod verify;

#[cfg(test)]
pub use entry::sim_devices;
pub use entry::{RunOptions, run};
pub use scenario::{DemoDevice, DemoOptions};

/// Why the demo's VM cannot run in this build: `None` on x86-64; on any other
/// architecture, a sentence saying that the demo needs an x86-64 KVM host.
pub fn unsupported_arch() -> Option<String> {
    if cfg!(target_arch = "x86_64") {
        None
    } else {
        Some(format!(
            "the demo needs an x86-64 KVM host (its guest is x86-64 code run in long mode); \
             this build is for {}",
            std::env::consts::ARCH
        ))
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod arch_tests {
    use super::*;

    #[test]
    fn only_x86_64_runs_the_demo_and_elsewhere_it_says_why() {
        match unsupported_arch() {
            None => assert_eq!(std::env::consts::ARCH, "x86_64"),
            Some(why) => {
                assert_ne!(std::env::consts::ARCH, "x86_64");
                assert!(
                    why.starts_with("the demo needs an x86-64 KVM host"),
                    "{why}"
                );
                assert!(why.ends_with(std::env::consts::ARCH), "{why}");
            }
        }
    }
}
