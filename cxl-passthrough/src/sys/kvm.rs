//! The KVM requests the facade makes: open `/dev/kvm`, `KVM_CREATE_VM` (a scratch VM to
//! ask VM-scoped questions) and `KVM_CHECK_EXTENSION`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::{cvt, open_rw};

/// `KVM_CREATE_VM`: `_IO(KVMIO, 0x01)`.
const KVM_CREATE_VM: u64 = 0xae01;
/// `KVM_CHECK_EXTENSION`: `_IO(KVMIO, 0x03)`.
const KVM_CHECK_EXTENSION: u64 = 0xae03;

/// Opens `/dev/kvm` read-write with `O_CLOEXEC`.
pub fn open_kvm() -> io::Result<OwnedFd> {
    open_rw(Path::new("/dev/kvm"))
}

/// `KVM_CREATE_VM` with the default machine type (0) on the system fd `kvm`; returns the
/// new VM's fd.
pub fn create_vm(kvm: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: KVM_CREATE_VM takes its argument (the machine type) by value and writes no
    // user memory; `kvm` is a valid borrowed descriptor.
    let ret = cvt(unsafe { libc::ioctl(kvm.as_raw_fd(), KVM_CREATE_VM as _, 0 as libc::c_ulong) })?;
    // SAFETY: on success KVM_CREATE_VM returns a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret) })
}

/// Asks the KVM fd `kvm` (`/dev/kvm` or a VM fd) about capability `cap`; returns the
/// kernel's answer (0: not supported, > 0: supported, sometimes a count).
pub fn check_extension(kvm: BorrowedFd<'_>, cap: u64) -> io::Result<i32> {
    let cap =
        libc::c_ulong::try_from(cap).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: KVM_CHECK_EXTENSION takes its argument by value and writes no user memory;
    // `kvm` is a valid borrowed descriptor (a non-KVM fd answers ENOTTY).
    cvt(unsafe { libc::ioctl(kvm.as_raw_fd(), KVM_CHECK_EXTENSION as _, cap) })
}
