//! [`KernelBackend`]: the [`Backend`] over a real VFIO device fd.
//!
//! Info ioctls are issued here with raw byte buffers (argsz growth through
//! [`query_grow`]) rather than through `vfio-ioctls`, and region file offsets always
//! come from the kernel's answer. All system calls go through [`VfioSys`], so everything
//! up to the ioctl boundary is tested without a device. See `docs/kernel-backend.md`.

pub mod args;
pub mod error;
pub mod locate;
pub mod open;
pub mod syscall;

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use log::warn;

pub use self::error::OpenError;
pub use self::locate::{DeviceLocator, HostPaths, OpenPlan};
pub use self::open::IommuCtx;
use super::{Backend, BackendError, MmapSource, ResetKind, Result, query_grow};
use crate::sys::vfio::{self as sv, RealVfioSys, VfioSys};
use crate::uapi::wire;

/// How many consecutive `EINTR` a single operation tolerates before giving up.
pub const MAX_EINTR_RETRIES: usize = 64;

/// A VFIO device opened by (or handed to) this crate.
///
/// Field order matters: the device fd is closed before the IOMMU context.
#[derive(Debug)]
pub struct KernelBackend<S: VfioSys = RealVfioSys> {
    device: OwnedFd,
    iommu: Option<IommuCtx>,
    sys: S,
}

impl KernelBackend<RealVfioSys> {
    /// Opens the device designated by `loc` on this host. A cdev path is first checked
    /// to be a VFIO device node ([`locate::check_vfio_node`]).
    pub fn open(loc: &DeviceLocator) -> std::result::Result<Self, OpenError> {
        let paths = HostPaths::default();
        if let DeviceLocator::Cdev(p) = loc {
            locate::check_vfio_node(p, &paths)?;
        }
        Self::open_with(RealVfioSys, loc, &paths)
    }

    /// Wraps a device fd the VMM already opened and attached to its own IOMMU context
    /// (the way cloud-hypervisor hands over its device). [`KernelBackend::map_dma`] is
    /// then unavailable: DMA mappings belong to the VMM's container or IOAS.
    pub fn from_device_fd(fd: OwnedFd) -> Self {
        Self::from_device_fd_with(RealVfioSys, fd)
    }
}

impl<S: VfioSys> KernelBackend<S> {
    /// Opens the device designated by `loc`, with explicit syscalls and host roots.
    pub fn open_with(
        sys: S,
        loc: &DeviceLocator,
        paths: &HostPaths,
    ) -> std::result::Result<Self, OpenError> {
        let plan = locate::resolve(loc, paths)?;
        let (device, ctx) = open::open_plan(&sys, &plan)?;
        Ok(Self {
            device,
            iommu: Some(ctx),
            sys,
        })
    }

    /// [`KernelBackend::from_device_fd`] with explicit syscalls.
    pub fn from_device_fd_with(sys: S, fd: OwnedFd) -> Self {
        Self {
            device: fd,
            iommu: None,
            sys,
        }
    }

    /// The IOMMU context this backend opened, `None` for a handed-over fd.
    pub fn iommu(&self) -> Option<&IommuCtx> {
        self.iommu.as_ref()
    }

    /// Maps `size` bytes of this process's memory at `host_addr` for device DMA at
    /// `iova` (read and write), in the container (`VFIO_IOMMU_MAP_DMA`) or the IOAS
    /// (`IOMMU_IOAS_MAP`, fixed IOVA).
    ///
    /// The device may read and write that memory until [`KernelBackend::unmap_dma`]; the
    /// caller must keep the range mapped (the kernel pins its pages).
    pub fn map_dma(&self, iova: u64, host_addr: u64, size: u64) -> Result<()> {
        check_range("map_dma", iova, host_addr, size)?;
        match self.dma_ctx()? {
            IommuCtx::Container { container, .. } => {
                let mut a = args::dma_map(iova, host_addr, size);
                self.ioctl(
                    container.as_fd(),
                    sv::VFIO_IOMMU_MAP_DMA,
                    "VFIO_IOMMU_MAP_DMA",
                    &mut a,
                )
            }
            IommuCtx::Iommufd {
                iommufd, ioas_id, ..
            } => {
                let mut a = args::ioas_map(*ioas_id, iova, host_addr, size);
                self.ioctl(
                    iommufd.as_fd(),
                    sv::IOMMU_IOAS_MAP,
                    "IOMMU_IOAS_MAP",
                    &mut a,
                )
            }
        }
    }

    /// Removes the DMA mapping of `[iova, iova + size)`. Fails with
    /// [`BackendError::Short`] when the kernel unmapped less than `size` bytes.
    pub fn unmap_dma(&self, iova: u64, size: u64) -> Result<()> {
        check_range("unmap_dma", iova, 0, size)?;
        let (op, done, a) = match self.dma_ctx()? {
            IommuCtx::Container { container, .. } => {
                let op = "VFIO_IOMMU_UNMAP_DMA";
                let mut a = args::dma_unmap(iova, size);
                self.ioctl(container.as_fd(), sv::VFIO_IOMMU_UNMAP_DMA, op, &mut a)?;
                (op, args::DMA_UNMAP_SIZE_FIELD, a)
            }
            IommuCtx::Iommufd {
                iommufd, ioas_id, ..
            } => {
                let op = "IOMMU_IOAS_UNMAP";
                let mut a = args::ioas_unmap(*ioas_id, iova, size);
                self.ioctl(iommufd.as_fd(), sv::IOMMU_IOAS_UNMAP, op, &mut a)?;
                (op, args::IOAS_UNMAP_LENGTH, a)
            }
        };
        let done = args::get64(&a, done).unwrap_or(0);
        if done != size {
            return Err(BackendError::Short {
                op: format!("{op}({iova:#x})"),
                done: usize::try_from(done).unwrap_or(usize::MAX),
                wanted: usize::try_from(size).unwrap_or(usize::MAX),
            });
        }
        Ok(())
    }

    /// v4: exports `[offset, offset + length)` of region `region_index` (the HDM memory
    /// region) as a dma-buf (`VFIO_DEVICE_FEATURE` with `GET | DMA_BUF`, one range).
    /// The kernel requires page-aligned, non-empty ranges inside the region and refuses
    /// (`EOPNOTSUPP`/`EINVAL`) on kernels or devices without the exporter; a buffer made
    /// while Memory Space is off starts revoked.
    pub fn export_dma_buf(&self, region_index: u32, offset: u64, length: u64) -> Result<OwnedFd> {
        check_range("export_dma_buf", offset, 0, length)?;
        let op = format!("VFIO_DEVICE_FEATURE(DMA_BUF, region {region_index})");
        let mut a = args::dma_buf_request(region_index, offset, length);
        retry_eintr(&op, || {
            self.sys
                .ioctl_new_fd(self.device.as_fd(), sv::VFIO_DEVICE_FEATURE, &mut a)
        })
    }

    /// v4: maps `length` bytes of a dma-buf (from [`KernelBackend::export_dma_buf`]) at
    /// `iova` in the IOAS (`IOMMU_IOAS_MAP_FILE`, fixed IOVA, read and write), the only
    /// DMA path v4 documents for device memory. A legacy container cannot import a
    /// dma-buf: there [`BackendError::Invalid`] (see `docs/kernel-backend.md` for the
    /// type1 assumption). Removed with [`KernelBackend::unmap_dma`].
    pub fn map_dma_buf(
        &self,
        dmabuf: std::os::fd::BorrowedFd<'_>,
        iova: u64,
        length: u64,
    ) -> Result<()> {
        use std::os::fd::AsRawFd;
        check_range("map_dma_buf", iova, 0, length)?;
        match self.dma_ctx()? {
            IommuCtx::Iommufd {
                iommufd, ioas_id, ..
            } => {
                let mut a = args::ioas_map_file(*ioas_id, dmabuf.as_raw_fd(), 0, iova, length);
                self.ioctl(
                    iommufd.as_fd(),
                    sv::IOMMU_IOAS_MAP_FILE,
                    "IOMMU_IOAS_MAP_FILE",
                    &mut a,
                )
            }
            IommuCtx::Container { .. } => Err(BackendError::Invalid(
                "a VFIO type1 container cannot map a dma-buf; map the mmap'ed device memory with map_dma \
                 (not established to work on v4)"
                    .into(),
            )),
        }
    }

    fn dma_ctx(&self) -> Result<&IommuCtx> {
        self.iommu.as_ref().ok_or_else(|| {
            BackendError::Invalid(
                "device fd was handed over: DMA mappings belong to the VMM's IOMMU context".into(),
            )
        })
    }

    /// One ioctl with a buffer, retried on `EINTR`.
    fn ioctl(
        &self,
        fd: std::os::fd::BorrowedFd<'_>,
        request: u64,
        op: &str,
        buf: &mut [u8],
    ) -> Result<()> {
        retry_eintr(op, || self.sys.ioctl_buf(fd, request, buf)).map(|_| ())
    }
}

fn check_range(op: &str, iova: u64, host: u64, size: u64) -> Result<()> {
    if size == 0 || iova.checked_add(size).is_none() || host.checked_add(size).is_none() {
        return Err(BackendError::Invalid(format!(
            "{op}: bad range iova {iova:#x} host {host:#x} size {size:#x}"
        )));
    }
    Ok(())
}

/// Runs `f` until it stops failing with `EINTR` (at most [`MAX_EINTR_RETRIES`] retries).
fn retry_eintr<T>(op: &str, mut f: impl FnMut() -> io::Result<T>) -> Result<T> {
    let mut last = None;
    for _ in 0..=MAX_EINTR_RETRIES {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => last = Some(e),
            Err(e) => {
                return Err(BackendError::Io {
                    op: op.to_string(),
                    source: e,
                });
            }
            Ok(v) => return Ok(v),
        }
    }
    warn!("{op}: interrupted {MAX_EINTR_RETRIES} times in a row");
    Err(BackendError::Io {
        op: op.to_string(),
        source: last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINTR)),
    })
}

/// `region_offset + offset` as a file position, refused when it overflows `off_t`.
fn position(op: &str, region_offset: u64, offset: u64) -> Result<u64> {
    region_offset
        .checked_add(offset)
        .filter(|p| i64::try_from(*p).is_ok())
        .ok_or_else(|| {
            BackendError::Invalid(format!(
                "{op}: offset {region_offset:#x} + {offset:#x} overflows"
            ))
        })
}

impl<S: VfioSys> Backend for KernelBackend<S> {
    fn device_info(&self) -> Result<Vec<u8>> {
        const OP: &str = "VFIO_DEVICE_GET_INFO";
        let fd = self.device.as_fd();
        query_grow(
            OP,
            wire::DEVICE_INFO_SIZE,
            |_| {},
            |b| self.ioctl(fd, sv::VFIO_DEVICE_GET_INFO, OP, b),
        )
    }

    fn region_info(&self, index: u32) -> Result<Vec<u8>> {
        let op = format!("VFIO_DEVICE_GET_REGION_INFO({index})");
        let fd = self.device.as_fd();
        query_grow(
            &op,
            wire::REGION_INFO_SIZE,
            |b| {
                if let Some(d) = b.get_mut(8..12) {
                    d.copy_from_slice(&index.to_le_bytes());
                }
            },
            |b| self.ioctl(fd, sv::VFIO_DEVICE_GET_REGION_INFO, &op, b),
        )
    }

    fn read(&self, region_offset: u64, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let pos = position("pread", region_offset, offset)?;
        let n = retry_eintr("pread", || self.sys.pread(self.device.as_fd(), buf, pos))?;
        Ok(n.min(buf.len()))
    }

    fn write(&self, region_offset: u64, offset: u64, buf: &[u8]) -> Result<usize> {
        let pos = position("pwrite", region_offset, offset)?;
        let n = retry_eintr("pwrite", || self.sys.pwrite(self.device.as_fd(), buf, pos))?;
        Ok(n.min(buf.len()))
    }

    fn mmap_source(&self, region_offset: u64) -> Result<MmapSource<'_>> {
        let offset = position("mmap", region_offset, 0)?;
        Ok(MmapSource {
            fd: self.device.as_fd(),
            offset,
        })
    }

    fn reset(&self, kind: ResetKind) -> Result<()> {
        match kind {
            ResetKind::Device => retry_eintr("VFIO_DEVICE_RESET", || {
                self.sys
                    .ioctl_val(self.device.as_fd(), sv::VFIO_DEVICE_RESET, 0)
            })
            .map(|_| ()),
        }
    }
}
