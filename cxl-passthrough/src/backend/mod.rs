//! The backend contract: the only way the library touches a device.
//!
//! A [`Backend`] answers with the kernel's raw bytes (device info, region info with its
//! capability chain) and performs region reads/writes at offsets; the pure
//! [`crate::uapi`] layer turns those bytes into validated types. Two implementations
//! exist: `kernel` (a VFIO device fd) and `sim` (the userspace simulator).

use std::io;
use std::os::fd::BorrowedFd;

use thiserror::Error;

/// Errors a backend reports. They carry the errno the kernel (or simulator) returned.
#[derive(Debug, Error)]
pub enum BackendError {
    /// An ioctl or file operation failed.
    #[error("{op} failed: {source}")]
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
