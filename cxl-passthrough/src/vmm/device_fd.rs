//! [`backend_from_device_fd`]: a device the VMM opened itself (its own VFIO device
//! model) as the crate's kernel backend.

use std::os::fd::BorrowedFd;
use std::sync::Arc;

use super::error::VmmError;
use crate::backend::Backend;
use crate::backend::kernel::KernelBackend;

/// The kernel backend over a duplicate of the VMM's VFIO device fd `fd` (the VMM keeps
/// its own; the IOMMU setup stays the VMM's).
pub fn backend_from_device_fd(fd: BorrowedFd<'_>) -> Result<Arc<dyn Backend>, VmmError> {
    let fd = fd.try_clone_to_owned().map_err(VmmError::DupFd)?;
    Ok(Arc::new(KernelBackend::from_device_fd(fd)))
}
