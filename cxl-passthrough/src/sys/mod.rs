//! The only module with `unsafe`: thin wrappers over ioctl, pread/pwrite, mmap and
//! memfd. Every `unsafe` block carries a `SAFETY:` comment.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub mod kvm;
#[cfg(feature = "sim")]
pub mod memfd;
pub mod page;
pub mod vfio;

/// Opens `path` read-write with `O_CLOEXEC` (VFIO devices and containers, `/dev/kvm`).
pub fn open_rw(path: &Path) -> io::Result<OwnedFd> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)?;
    Ok(OwnedFd::from(f))
}

/// A C return value as a result: negative means `errno`.
pub fn cvt(ret: libc::c_int) -> io::Result<i32> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
