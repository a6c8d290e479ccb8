//! The backend contract: the only way the library touches a device.
//!
//! A [`Backend`] answers with the kernel's raw bytes (device info, region info with its
//! capability chain) and performs region reads/writes at offsets; the pure
//! [`crate::uapi`] layer turns those bytes into validated types. Two implementations
//! exist: `kernel` (a VFIO device fd) and `sim` (the userspace simulator).

pub mod kernel;
#[cfg(feature = "sim")]
pub mod sim;

use std::io;
use std::os::fd::BorrowedFd;

use thiserror::Error;

/// Errors a backend reports. They carry the errno the kernel (or simulator) returned.
#[derive(Debug, Error)]
pub enum BackendError {
    /// An ioctl or file operation failed.
    #[error("{op} failed")]
    Io {
        /// What was attempted (for example `VFIO_DEVICE_GET_REGION_INFO(9)`).
        op: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A read or write transferred fewer bytes than asked.
    #[error("{op}: short transfer, {done} of {wanted} bytes")]
    Short {
        /// What was attempted.
        op: String,
        /// Bytes transferred.
        done: usize,
        /// Bytes requested.
        wanted: usize,
    },
    /// The answer does not fit what the caller can handle (for example absurd sizes).
    #[error("{0}")]
    Invalid(String),
}

impl BackendError {
    /// Builds an [`BackendError::Io`] from an errno value.
    pub fn errno(op: impl Into<String>, errno: i32) -> Self {
        BackendError::Io {
            op: op.into(),
            source: io::Error::from_raw_os_error(errno),
        }
    }

    /// The errno behind this error, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            BackendError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// Result alias for backend operations.
pub type Result<T> = std::result::Result<T, BackendError>;

/// Where to mmap a region: a file descriptor and the file offset the kernel reported.
#[derive(Debug, Clone, Copy)]
pub struct MmapSource<'a> {
    /// The device fd to pass to mmap.
    pub fd: BorrowedFd<'a>,
    /// The region's file offset, taken from the kernel's region info.
    pub offset: u64,
}

/// Which reset to perform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetKind {
    /// `VFIO_DEVICE_RESET` (function-level reset chosen by the kernel).
    Device,
}

/// The kernel contract, as the VMM sees it.
///
/// Every method answers like the kernel would: raw buffers, byte counts and errnos.
/// Implementations must be cheap to call from an MMIO exit path.
pub trait Backend: Send + Sync {
    /// `VFIO_DEVICE_GET_INFO` with a buffer large enough for the whole capability
    /// chain: the full `vfio_device_info` bytes (header + capabilities).
    fn device_info(&self) -> Result<Vec<u8>>;

    /// `VFIO_DEVICE_GET_REGION_INFO` for `index`: the full `vfio_region_info` bytes
    /// (header + capabilities), after growing `argsz` as the kernel asks.
    fn region_info(&self, index: u32) -> Result<Vec<u8>>;

    /// pread on the region at `region_offset + offset`. Returns bytes read.
    fn read(&self, region_offset: u64, offset: u64, buf: &mut [u8]) -> Result<usize>;

    /// pwrite on the region at `region_offset + offset`. Returns bytes written.
    fn write(&self, region_offset: u64, offset: u64, buf: &[u8]) -> Result<usize>;

    /// The fd and file offset to mmap for a region whose info reported `region_offset`.
    fn mmap_source(&self, region_offset: u64) -> Result<MmapSource<'_>>;

    /// Resets the device.
    fn reset(&self, kind: ResetKind) -> Result<()>;
}

/// Largest answer accepted from `GET_INFO` / `GET_REGION_INFO`; a kernel asking for
/// more is treated as hostile.
pub const MAX_INFO_ARGSZ: u32 = 64 * 1024;

/// Runs an info ioctl the way VFIO expects: call with `initial` bytes (with `argsz` and,
/// for region info, `index` filled in by `prepare`), and when the kernel reports a
/// larger `argsz` (capabilities did not fit), call again with that size.
///
/// `call` performs the ioctl on the buffer. Returns the whole buffer of the last call. Never grows beyond [`MAX_INFO_ARGSZ`] and never loops more than 4 times.
pub fn query_grow(
    op: &str,
    initial: usize,
    mut prepare: impl FnMut(&mut [u8]),
    mut call: impl FnMut(&mut [u8]) -> Result<()>,
) -> Result<Vec<u8>> {
    let mut size = initial;
    for _ in 0..4 {
        let mut buf = vec![0u8; size];
        let argsz = u32::try_from(size)
            .map_err(|_| BackendError::Invalid(format!("{op}: argsz overflow")))?;
        buf[..4].copy_from_slice(&argsz.to_le_bytes());
        prepare(&mut buf);
        call(&mut buf)?;
        let want = crate::uapi::wire::le32(&buf, 0).unwrap_or(0);
        if want > MAX_INFO_ARGSZ {
            return Err(BackendError::Invalid(format!(
                "{op}: kernel asks for argsz {want}, over {MAX_INFO_ARGSZ}"
            )));
        }
        let want = want as usize;
        if want <= size {
            // The kernel only rewrites argsz when the capabilities did not fit.
            return Ok(buf);
        }
        size = want;
    }
    Err(BackendError::Invalid(format!("{op}: argsz kept growing")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_once_then_returns_full_answer() {
        let mut calls = vec![];
        let out = query_grow(
            "t",
            24,
            |_| {},
            |b| {
                calls.push(b.len());
                b[0..4].copy_from_slice(&56u32.to_le_bytes());
                if b.len() >= 56 {
                    b[55] = 0xAA;
                }
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(calls, vec![24, 56]);
        assert_eq!(out.len(), 56);
        assert_eq!(out[55], 0xAA);
    }

    #[test]
    fn hostile_growth_is_refused() {
        let r = query_grow(
            "t",
            24,
            |_| {},
            |b| {
                b[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
                Ok(())
            },
        );
        assert!(matches!(r, Err(BackendError::Invalid(_))));
        let mut n = 24u32;
        let r = query_grow(
            "t",
            24,
            |_| {},
            |b| {
                n += 8;
                b[0..4].copy_from_slice(&n.to_le_bytes());
                Ok(())
            },
        );
        assert!(matches!(r, Err(BackendError::Invalid(_))));
        let r = query_grow(
            "t",
            24,
            |_| {},
            |_| Err(BackendError::errno("x", libc::ENOTTY)),
        );
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ENOTTY));
    }
}
