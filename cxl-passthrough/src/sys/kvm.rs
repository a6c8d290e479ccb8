//! The one KVM request the facade makes: `KVM_CHECK_EXTENSION`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `KVM_CHECK_EXTENSION`: `_IO(KVMIO, 0x03)`.
const KVM_CHECK_EXTENSION: u64 = 0xae03;

/// Asks the KVM fd `kvm` (`/dev/kvm` or a VM fd) about capability `cap`; returns the
/// kernel's answer (0: not supported, > 0: supported, sometimes a count).
pub fn check_extension(kvm: BorrowedFd<'_>, cap: u64) -> io::Result<i32> {
    let cap =
        libc::c_ulong::try_from(cap).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: KVM_CHECK_EXTENSION takes its argument by value and writes no user memory;
    // `kvm` is a valid borrowed descriptor (a non-KVM fd answers ENOTTY).
    let ret = unsafe { libc::ioctl(kvm.as_raw_fd(), KVM_CHECK_EXTENSION as _, cap) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
