//! Typed errors of opening a VFIO device.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// How to bind the PCI device `bdf` to vfio-pci, for messages.
pub fn bind_hint(bdf: &str) -> String {
    format!(
        "to bind it: echo vfio-pci > /sys/bus/pci/devices/{bdf}/driver_override, unbind it from \
         its current driver, then echo {bdf} > /sys/bus/pci/drivers/vfio-pci/bind \
         (docs/kernel-backend.md)"
    )
}

/// Why a VFIO device could not be opened.
#[derive(Debug, Error)]
pub enum OpenError {
    /// The BDF is not of the form `DDDD:BB:DD.F` (or `BB:DD.F`).
    #[error("invalid PCI address {0:?} (expected DDDD:BB:DD.F)")]
    InvalidBdf(String),
    /// A path the open sequence needs does not exist.
    #[error("{0} does not exist")]
    PathMissing(PathBuf),
    /// The caller may not open a VFIO node.
    #[error(
        "permission denied opening {0} (needs access to the VFIO nodes, see docs/kernel-backend.md)"
    )]
    PermissionDenied(PathBuf),
    /// A path given as the device is not a VFIO device cdev (a directory, a regular
    /// file, another character device such as `/dev/null`).
    #[error(
        "{} is not a VFIO device ({what}); name a VFIO device cdev (/dev/vfio/devices/vfioN) \
         or the PCI address of a device bound to vfio-pci; {}",
        .path.display(),
        bind_hint("<BDF>")
    )]
    NotVfioDevice {
        /// The path given.
        path: PathBuf,
        /// What it is instead.
        what: String,
    },
    /// The PCI device exists but is not bound to a VFIO driver.
    #[error("{bdf} is not bound to vfio-pci (driver: {driver}); {}", bind_hint(.bdf))]
    NotBoundToVfio {
        /// The PCI address.
        bdf: String,
        /// The bound driver's name, or `none`.
        driver: String,
    },
    /// The IOMMU group is not viable: another device of the group is bound to a
    /// non-VFIO driver.
    #[error("IOMMU group {0} is not viable (bind every device of the group to vfio-pci)")]
    GroupNotViable(String),
    /// The kernel does not know an ioctl (ENOTTY): the feature is missing.
    #[error("{0}: not supported by this kernel (ENOTTY)")]
    Unsupported(&'static str),
    /// The container does not offer the VFIO type1v2 IOMMU.
    #[error("VFIO container does not support the type1v2 IOMMU")]
    NoType1v2,
    /// The container speaks another VFIO API version.
    #[error("VFIO API version {0}, expected {1}")]
    ApiVersion(i32, u32),
    /// The kernel answered an ioctl with something unusable.
    #[error("{0}")]
    BadAnswer(String),
    /// Any other failure, with the operation and the OS error.
    #[error("{op} failed")]
    Io {
        /// What was attempted.
        op: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl OpenError {
    /// Maps an error from opening `path`.
    pub fn from_open(path: PathBuf, e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::NotFound => OpenError::PathMissing(path),
            io::ErrorKind::PermissionDenied => OpenError::PermissionDenied(path),
            _ => OpenError::Io {
                op: format!("open {}", path.display()),
                source: e,
            },
        }
    }

    /// Maps an error from ioctl `op`.
    pub fn from_ioctl(op: &'static str, e: io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::ENOTTY) => OpenError::Unsupported(op),
            _ => OpenError::Io {
                op: op.to_string(),
                source: e,
            },
        }
    }
}
