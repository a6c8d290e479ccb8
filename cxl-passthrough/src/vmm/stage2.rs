//! Whether the host's KVM gives the guest the device memory as normal, cacheable memory.
//!
//! VFIO maps the CXL device memory into the VMM write-back cacheable, as a `VM_PFNMAP`
//! range (docs/uapi.md). KVM on x86-64 keeps the host mapping's attributes in the guest.
//! KVM on arm64 maps `VM_PFNMAP` ranges as Device memory at stage 2 unless the host
//! kernel supports cacheable PFNMAP (Linux 6.17, "KVM: arm64: Map GPU device memory as
//! cacheable", on a CPU with FEAT_S2FWB) and says so through
//! `KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED`. Without it the guest's coherent memory is
//! Device memory (unaligned accesses and atomics fault) or, on kernels that refuse the
//! mapping, the first guest access fails `KVM_RUN`. [`check_kvm_device_memory`] (with
//! the VM's fd) or [`check_host_kvm_device_memory`] (with a scratch VM) turns that into
//! one clear error at boot, before the guest exists.
//!
//! The capability is VM-scoped: kernels that know it answer `EINVAL` when it is asked on
//! `/dev/kvm` itself (seen on Debian's arm64 7.3.4), older ones answer 0 on both.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use crate::sys::kvm::{check_extension, create_vm, open_kvm};

use super::VmmError;

/// `KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED` (Linux 6.17 UAPI): a cacheable `VM_PFNMAP`
/// range may be mapped cacheable at stage 2.
pub const KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED: u64 = 243;

/// The host architectures whose KVM the check knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostArch {
    /// x86-64: KVM keeps the host mapping's memory type; nothing to ask.
    X86_64,
    /// arm64: KVM must report [`KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED`].
    Aarch64,
}

impl HostArch {
    /// The architecture this crate was built for, if the check knows it.
    pub fn current() -> Option<Self> {
        if cfg!(target_arch = "x86_64") {
            Some(Self::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Self::Aarch64)
        } else {
            None
        }
    }
}

/// Checks that KVM maps the device memory of a CXL device into the VM `vm` (a KVM VM fd,
/// not `/dev/kvm`: the capability is VM-scoped) cacheable. Call it once per VM before
/// mapping the device memory of a VFIO device (the simulator's memory is ordinary memory
/// and needs no check).
///
/// Returns [`VmmError::DeviceMemoryNotCacheable`] on an arm64 host whose KVM does not
/// report [`KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED`], [`VmmError::Kvm`] when the question
/// itself fails, and `Ok` on x86-64 (and on architectures the check does not know).
pub fn check_kvm_device_memory(vm: BorrowedFd<'_>) -> Result<(), VmmError> {
    match HostArch::current() {
        Some(HostArch::Aarch64) => device_memory_verdict(
            HostArch::Aarch64,
            check_extension(vm, KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED),
        ),
        _ => Ok(()),
    }
}

/// [`check_kvm_device_memory`] for a VMM that does not hand out its VM fd: asks a
/// scratch VM created on `/dev/kvm` (the answer depends on the host kernel and CPU, not
/// on the VM). On x86-64 it returns `Ok` without opening anything.
///
/// Returns [`VmmError::KvmUnavailable`] when `/dev/kvm` cannot be opened (not a KVM
/// host), besides the errors of [`check_kvm_device_memory`].
pub fn check_host_kvm_device_memory() -> Result<(), VmmError> {
    if HostArch::current() != Some(HostArch::Aarch64) {
        return Ok(());
    }
    let kvm = open_kvm().map_err(VmmError::KvmUnavailable)?;
    let vm = create_vm(kvm.as_fd()).map_err(VmmError::Kvm)?;
    check_kvm_device_memory(vm.as_fd())
}

/// The decision of [`check_kvm_device_memory`] for `arch`, given KVM's answer to
/// `KVM_CHECK_EXTENSION(KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED)` (unused on x86-64).
pub fn device_memory_verdict(arch: HostArch, answer: io::Result<i32>) -> Result<(), VmmError> {
    match arch {
        HostArch::X86_64 => Ok(()),
        HostArch::Aarch64 => match answer {
            Ok(n) if n > 0 => Ok(()),
            Ok(_) => Err(VmmError::DeviceMemoryNotCacheable),
            Err(e) => Err(VmmError::Kvm(e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn arm64_needs_the_cacheable_pfnmap_capability() {
        assert!(device_memory_verdict(HostArch::Aarch64, Ok(1)).is_ok());
        let err = device_memory_verdict(HostArch::Aarch64, Ok(0)).unwrap_err();
        assert!(matches!(err, VmmError::DeviceMemoryNotCacheable));
        // The message names the capability, the kernel change and the CPU feature.
        let msg = err.to_string();
        for needle in [
            "KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED",
            "6.17",
            "FEAT_S2FWB",
        ] {
            assert!(msg.contains(needle), "{msg}");
        }
        let err = device_memory_verdict(
            HostArch::Aarch64,
            Err(io::Error::from_raw_os_error(libc::ENOTTY)),
        )
        .unwrap_err();
        assert!(matches!(err, VmmError::Kvm(_)));
        assert_eq!(
            err.source()
                .and_then(|s| s.downcast_ref::<io::Error>())
                .and_then(io::Error::raw_os_error),
            Some(libc::ENOTTY)
        );
    }

    #[test]
    fn x86_64_keeps_the_host_memory_type_and_asks_nothing() {
        assert!(device_memory_verdict(HostArch::X86_64, Ok(0)).is_ok());
        assert!(
            device_memory_verdict(
                HostArch::X86_64,
                Err(io::Error::from_raw_os_error(libc::ENOTTY))
            )
            .is_ok()
        );
    }

    #[test]
    fn the_host_check_opens_nothing_on_x86_64() {
        if HostArch::current() == Some(HostArch::X86_64) {
            // Ok whether or not this machine has a /dev/kvm.
            assert!(check_host_kvm_device_memory().is_ok());
        }
    }

    #[test]
    fn a_fd_that_is_not_kvm_is_an_error_on_arm64_and_fine_on_x86_64() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let r = check_kvm_device_memory(std::os::fd::AsFd::as_fd(&f));
        match HostArch::current() {
            Some(HostArch::Aarch64) => assert!(matches!(r, Err(VmmError::Kvm(_))), "{r:?}"),
            _ => assert!(r.is_ok(), "{r:?}"),
        }
    }
}
