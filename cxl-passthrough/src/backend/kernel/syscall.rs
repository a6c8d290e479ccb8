//! The system-call layer [`KernelBackend`](super::KernelBackend) is generic over.
//!
//! [`RealVfioSys`] issues the calls; a test of a VMM (or of this crate) substitutes a
//! fake kernel by implementing [`VfioSys`], which is called with the request numbers
//! below (the VFIO and iommufd requests this crate issues, from
//! `include/uapi/linux/vfio.h` and `iommufd.h`). The rest of the crate's syscall
//! wrappers (mmap, memfd) are private.

pub use crate::sys::vfio::{
    IOMMU_DESTROY, IOMMU_IOAS_ALLOC, IOMMU_IOAS_MAP, IOMMU_IOAS_MAP_FILE, IOMMU_IOAS_UNMAP,
    RealVfioSys, VFIO_CHECK_EXTENSION, VFIO_DEVICE_ATTACH_IOMMUFD_PT, VFIO_DEVICE_BIND_IOMMUFD,
    VFIO_DEVICE_FEATURE, VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_REGION_INFO, VFIO_DEVICE_RESET,
    VFIO_GET_API_VERSION, VFIO_GROUP_GET_DEVICE_FD, VFIO_GROUP_GET_STATUS,
    VFIO_GROUP_SET_CONTAINER, VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA, VFIO_SET_IOMMU, VfioSys,
};
