//! VFIO and iommufd system calls: request numbers, the injectable [`VfioSys`] syscall
//! layer, and its real implementation [`RealVfioSys`].
//!
//! `vfio-bindings` 0.6.2 carries the VFIO structures and constants but not the request
//! numbers (they are C macros), and nothing of iommufd. Request numbers are therefore
//! computed here with [`io()`] (the kernel's `_IO(type, nr)`) from the bindings'
//! `VFIO_TYPE` / `VFIO_BASE`, and the iommufd ones from `include/uapi/linux/iommufd.h`.
//!
//! The real implementation only issues requests it knows (see [`arg_rule`]), and checks
//! the argument buffer against the structure the kernel reads or writes for that request
//! before handing a pointer to the kernel.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;

use vfio_bindings::bindings::vfio as vb;

use super::cvt;

/// The kernel's `_IO(type, nr)`: no direction bits and no size bits.
pub const fn io(ty: u32, nr: u32) -> u64 {
    ((ty << 8) | nr) as u64
}

const VT: u32 = vb::VFIO_TYPE as u32;
const VBASE: u32 = vb::VFIO_BASE;

/// `VFIO_GET_API_VERSION` (container).
pub const VFIO_GET_API_VERSION: u64 = io(VT, VBASE);
/// `VFIO_CHECK_EXTENSION` (container).
pub const VFIO_CHECK_EXTENSION: u64 = io(VT, VBASE + 1);
/// `VFIO_SET_IOMMU` (container).
pub const VFIO_SET_IOMMU: u64 = io(VT, VBASE + 2);
/// `VFIO_GROUP_GET_STATUS` (group).
pub const VFIO_GROUP_GET_STATUS: u64 = io(VT, VBASE + 3);
/// `VFIO_GROUP_SET_CONTAINER` (group).
pub const VFIO_GROUP_SET_CONTAINER: u64 = io(VT, VBASE + 4);
/// `VFIO_GROUP_GET_DEVICE_FD` (group).
pub const VFIO_GROUP_GET_DEVICE_FD: u64 = io(VT, VBASE + 6);
/// `VFIO_DEVICE_GET_INFO` (device).
pub const VFIO_DEVICE_GET_INFO: u64 = io(VT, VBASE + 7);
/// `VFIO_DEVICE_GET_REGION_INFO` (device).
pub const VFIO_DEVICE_GET_REGION_INFO: u64 = io(VT, VBASE + 8);
/// `VFIO_DEVICE_RESET` (device).
pub const VFIO_DEVICE_RESET: u64 = io(VT, VBASE + 11);
/// `VFIO_IOMMU_MAP_DMA` (container, type1).
pub const VFIO_IOMMU_MAP_DMA: u64 = io(VT, VBASE + 13);
/// `VFIO_IOMMU_UNMAP_DMA` (container, type1).
pub const VFIO_IOMMU_UNMAP_DMA: u64 = io(VT, VBASE + 14);
/// `VFIO_DEVICE_BIND_IOMMUFD` (device cdev).
pub const VFIO_DEVICE_BIND_IOMMUFD: u64 = io(VT, VBASE + 18);
/// `VFIO_DEVICE_FEATURE` (v4 exports device memory with `GET | DMA_BUF`).
pub const VFIO_DEVICE_FEATURE: u64 = io(VT, VBASE + 17);
/// `VFIO_DEVICE_ATTACH_IOMMUFD_PT` (device cdev).
pub const VFIO_DEVICE_ATTACH_IOMMUFD_PT: u64 = io(VT, VBASE + 19);

/// `IOMMUFD_TYPE` (`';'`).
pub const IOMMUFD_TYPE: u32 = b';' as u32;
/// `IOMMU_DESTROY`.
pub const IOMMU_DESTROY: u64 = io(IOMMUFD_TYPE, 0x80);
/// `IOMMU_IOAS_ALLOC`.
pub const IOMMU_IOAS_ALLOC: u64 = io(IOMMUFD_TYPE, 0x81);
/// `IOMMU_IOAS_MAP`.
pub const IOMMU_IOAS_MAP: u64 = io(IOMMUFD_TYPE, 0x85);
/// `IOMMU_IOAS_UNMAP`.
pub const IOMMU_IOAS_UNMAP: u64 = io(IOMMUFD_TYPE, 0x86);
/// `IOMMU_IOAS_MAP_FILE` (maps a file, such as a dma-buf, into an IOAS).
pub const IOMMU_IOAS_MAP_FILE: u64 = io(IOMMUFD_TYPE, 0x8f);
/// `sizeof(struct iommu_ioas_map_file)`.
pub const IOMMU_IOAS_MAP_FILE_SIZE: usize = 40;

/// `sizeof(struct iommu_destroy)`.
pub const IOMMU_DESTROY_SIZE: usize = 8;
/// `sizeof(struct iommu_ioas_alloc)`.
pub const IOMMU_IOAS_ALLOC_SIZE: usize = 12;
/// `sizeof(struct iommu_ioas_map)`.
pub const IOMMU_IOAS_MAP_SIZE: usize = 40;
/// `sizeof(struct iommu_ioas_unmap)`.
pub const IOMMU_IOAS_UNMAP_SIZE: usize = 24;
/// `IOMMU_IOAS_MAP_FIXED_IOVA`.
pub const IOMMU_IOAS_MAP_FIXED_IOVA: u32 = 1 << 0;
/// `IOMMU_IOAS_MAP_WRITEABLE`.
pub const IOMMU_IOAS_MAP_WRITEABLE: u32 = 1 << 1;
/// `IOMMU_IOAS_MAP_READABLE`.
pub const IOMMU_IOAS_MAP_READABLE: u32 = 1 << 2;

/// How a request's argument is passed, as far as the real implementation accepts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgRule {
    /// Passed by value (or no argument); the kernel dereferences nothing.
    Value,
    /// A structure whose first `u32` is its size (`argsz` / `size`): the buffer must
    /// hold at least `min` bytes and the size field must not exceed the buffer.
    Sized {
        /// Smallest structure the kernel reads for this request.
        min: usize,
    },
    /// A pointer to one `int` (`VFIO_GROUP_SET_CONTAINER`).
    Int,
    /// A NUL-terminated string (`VFIO_GROUP_GET_DEVICE_FD`).
    CStr,
}

/// The argument rule of every request this crate issues; `None` for any other request.
pub fn arg_rule(request: u64) -> Option<ArgRule> {
    Some(match request {
        VFIO_GET_API_VERSION | VFIO_CHECK_EXTENSION | VFIO_SET_IOMMU | VFIO_DEVICE_RESET => {
            ArgRule::Value
        }
        VFIO_GROUP_GET_STATUS => ArgRule::Sized {
            min: size_of::<vb::vfio_group_status>(),
        },
        VFIO_GROUP_SET_CONTAINER => ArgRule::Int,
        VFIO_GROUP_GET_DEVICE_FD => ArgRule::CStr,
        VFIO_DEVICE_GET_INFO => ArgRule::Sized {
            min: size_of::<vb::vfio_device_info>(),
        },
        VFIO_DEVICE_GET_REGION_INFO => ArgRule::Sized {
            min: size_of::<vb::vfio_region_info>(),
        },
        VFIO_IOMMU_MAP_DMA => ArgRule::Sized {
            min: size_of::<vb::vfio_iommu_type1_dma_map>(),
        },
        VFIO_IOMMU_UNMAP_DMA => ArgRule::Sized {
            min: size_of::<vb::vfio_iommu_type1_dma_unmap>(),
        },
        VFIO_DEVICE_BIND_IOMMUFD => ArgRule::Sized {
            min: size_of::<vb::vfio_device_bind_iommufd>(),
        },
        VFIO_DEVICE_ATTACH_IOMMUFD_PT => ArgRule::Sized {
            min: size_of::<vb::vfio_device_attach_iommufd_pt>(),
        },
        IOMMU_DESTROY => ArgRule::Sized {
            min: IOMMU_DESTROY_SIZE,
        },
        IOMMU_IOAS_ALLOC => ArgRule::Sized {
            min: IOMMU_IOAS_ALLOC_SIZE,
        },
        IOMMU_IOAS_MAP => ArgRule::Sized {
            min: IOMMU_IOAS_MAP_SIZE,
        },
        IOMMU_IOAS_UNMAP => ArgRule::Sized {
            min: IOMMU_IOAS_UNMAP_SIZE,
        },
        IOMMU_IOAS_MAP_FILE => ArgRule::Sized {
            min: IOMMU_IOAS_MAP_FILE_SIZE,
        },
        // `struct vfio_device_feature` (argsz, flags) and its payload.
        VFIO_DEVICE_FEATURE => ArgRule::Sized { min: 8 },
        _ => return None,
    })
}

/// Checks `buf` against the rule of `request` for a pointer argument.
fn check_buf(request: u64, buf: &[u8]) -> io::Result<()> {
    let ok = match arg_rule(request) {
        Some(ArgRule::Sized { min }) => {
            let declared = buf
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_ne_bytes);
            buf.len() >= min && declared.is_some_and(|d| d as usize <= buf.len())
        }
        Some(ArgRule::Int) => buf.len() == size_of::<libc::c_int>(),
        Some(ArgRule::CStr) => CStr::from_bytes_until_nul(buf).is_ok(),
        Some(ArgRule::Value) | None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }
}

/// The system calls the kernel backend needs. Errors carry the errno the kernel gave.
///
/// The real implementation is [`RealVfioSys`]; tests substitute one that records the
/// requests and answers with canned bytes.
pub trait VfioSys: Send + Sync {
    /// Opens `path` read-write with `O_CLOEXEC`.
    fn open(&self, path: &Path) -> io::Result<OwnedFd>;
    /// `ioctl(fd, request, arg)` with an integer (or no) argument; returns the ioctl's
    /// non-negative return value.
    fn ioctl_val(&self, fd: BorrowedFd<'_>, request: u64, arg: u64) -> io::Result<i32>;
    /// `ioctl(fd, request, buf.as_mut_ptr())`; the kernel may rewrite `buf`.
    fn ioctl_buf(&self, fd: BorrowedFd<'_>, request: u64, buf: &mut [u8]) -> io::Result<i32>;
    /// Like [`VfioSys::ioctl_buf`] for a request whose return value is a new fd
    /// (`VFIO_GROUP_GET_DEVICE_FD`, `VFIO_DEVICE_FEATURE` with `GET | DMA_BUF`).
    fn ioctl_new_fd(&self, fd: BorrowedFd<'_>, request: u64, buf: &mut [u8])
    -> io::Result<OwnedFd>;
    /// One `pread` at `offset` (no retry); returns bytes read.
    fn pread(&self, fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// One `pwrite` at `offset` (no retry); returns bytes written.
    fn pwrite(&self, fd: BorrowedFd<'_>, buf: &[u8], offset: u64) -> io::Result<usize>;
}

/// The real system calls.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealVfioSys;

/// Runs `f` on a borrowed fd as a `File` without closing it.
fn with_file<T>(fd: BorrowedFd<'_>, f: impl FnOnce(&std::fs::File) -> T) -> T {
    // SAFETY: `fd` is a valid open descriptor for the lifetime of the borrow; the
    // ManuallyDrop wrapper guarantees the File never closes it.
    let file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd.as_raw_fd()) });
    f(&file)
}

impl VfioSys for RealVfioSys {
    fn open(&self, path: &Path) -> io::Result<OwnedFd> {
        super::open_rw(path)
    }

    fn ioctl_val(&self, fd: BorrowedFd<'_>, request: u64, arg: u64) -> io::Result<i32> {
        if arg_rule(request) != Some(ArgRule::Value) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let arg =
            libc::c_ulong::try_from(arg).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: the request is one of the by-value VFIO requests (checked above), so the
        // kernel does not dereference `arg`; `fd` is a valid borrowed descriptor.
        cvt(unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) })
    }

    fn ioctl_buf(&self, fd: BorrowedFd<'_>, request: u64, buf: &mut [u8]) -> io::Result<i32> {
        check_buf(request, buf)?;
        // SAFETY: `check_buf` verified that `buf` holds the whole structure this request
        // reads or writes (at least its minimum size, and no more than the size field the
        // kernel honours); the pointer is valid and exclusively borrowed for the call.
        cvt(unsafe { libc::ioctl(fd.as_raw_fd(), request as _, buf.as_mut_ptr()) })
    }

    fn ioctl_new_fd(
        &self,
        fd: BorrowedFd<'_>,
        request: u64,
        buf: &mut [u8],
    ) -> io::Result<OwnedFd> {
        let dma_buf_get = (crate::uapi::wire::DEVICE_FEATURE_GET
            | crate::uapi::wire::DEVICE_FEATURE_DMA_BUF)
            .to_ne_bytes();
        let returns_fd = request == VFIO_GROUP_GET_DEVICE_FD
            || (request == VFIO_DEVICE_FEATURE && buf.get(4..8) == Some(&dma_buf_get[..]));
        if !returns_fd {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let new = self.ioctl_buf(fd, request, buf)?;
        // SAFETY: on success VFIO_GROUP_GET_DEVICE_FD, and VFIO_DEVICE_FEATURE with
        // exactly GET | DMA_BUF (checked above), return a new descriptor that this
        // process owns and nothing else refers to.
        Ok(unsafe { OwnedFd::from_raw_fd(new) })
    }

    fn pread(&self, fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        with_file(fd, |f| f.read_at(buf, offset))
    }

    fn pwrite(&self, fd: BorrowedFd<'_>, buf: &[u8], offset: u64) -> io::Result<usize> {
        with_file(fd, |f| f.write_at(buf, offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values computed by hand from `include/uapi/linux/vfio.h` and `iommufd.h`:
    /// `_IO(';', n)` = 0x3B00 | n.
    #[test]
    fn request_numbers_match_kernel_headers() {
        assert_eq!(VFIO_GET_API_VERSION, 0x3B64);
        assert_eq!(VFIO_CHECK_EXTENSION, 0x3B65);
        assert_eq!(VFIO_SET_IOMMU, 0x3B66);
        assert_eq!(VFIO_GROUP_GET_STATUS, 0x3B67);
        assert_eq!(VFIO_GROUP_SET_CONTAINER, 0x3B68);
        assert_eq!(VFIO_GROUP_GET_DEVICE_FD, 0x3B6A);
        assert_eq!(VFIO_DEVICE_GET_INFO, 0x3B6B);
        assert_eq!(VFIO_DEVICE_GET_REGION_INFO, 0x3B6C);
        assert_eq!(VFIO_DEVICE_RESET, 0x3B6F);
        assert_eq!(VFIO_IOMMU_MAP_DMA, 0x3B71);
        assert_eq!(VFIO_IOMMU_UNMAP_DMA, 0x3B72);
        assert_eq!(VFIO_DEVICE_BIND_IOMMUFD, 0x3B76);
        assert_eq!(VFIO_DEVICE_ATTACH_IOMMUFD_PT, 0x3B77);
        assert_eq!(IOMMU_DESTROY, 0x3B80);
        assert_eq!(IOMMU_IOAS_ALLOC, 0x3B81);
        assert_eq!(IOMMU_IOAS_MAP, 0x3B85);
        assert_eq!(IOMMU_IOAS_UNMAP, 0x3B86);
    }

    #[test]
    fn struct_sizes_match_kernel_headers() {
        assert_eq!(size_of::<vb::vfio_group_status>(), 8);
        assert_eq!(size_of::<vb::vfio_device_info>(), 24);
        assert_eq!(size_of::<vb::vfio_region_info>(), 32);
        assert_eq!(size_of::<vb::vfio_iommu_type1_dma_map>(), 32);
        assert_eq!(size_of::<vb::vfio_iommu_type1_dma_unmap>(), 24);
        assert_eq!(size_of::<vb::vfio_device_bind_iommufd>(), 16);
        assert_eq!(size_of::<vb::vfio_device_attach_iommufd_pt>(), 12);
    }

    #[test]
    fn real_sys_refuses_buffers_the_kernel_would_overrun() {
        let f = std::fs::File::open("/dev/null").expect("open /dev/null");
        let fd = std::os::fd::AsFd::as_fd(&f);
        let s = RealVfioSys;
        // Too small for vfio_region_info.
        let mut small = [0u8; 16];
        small[..4].copy_from_slice(&16u32.to_ne_bytes());
        let e = s.ioctl_buf(fd, VFIO_DEVICE_GET_REGION_INFO, &mut small);
        assert_eq!(e.unwrap_err().raw_os_error(), Some(libc::EINVAL));
        // argsz larger than the buffer.
        let mut lying = [0u8; 32];
        lying[..4].copy_from_slice(&4096u32.to_ne_bytes());
        let e = s.ioctl_buf(fd, VFIO_DEVICE_GET_REGION_INFO, &mut lying);
        assert_eq!(e.unwrap_err().raw_os_error(), Some(libc::EINVAL));
        // Unknown request, by value or by pointer.
        assert!(s.ioctl_val(fd, 0x1234, 0).is_err());
        assert!(s.ioctl_buf(fd, 0x1234, &mut [0u8; 64]).is_err());
        // A device name without NUL.
        let e = s.ioctl_new_fd(fd, VFIO_GROUP_GET_DEVICE_FD, &mut b"0000:01:00.0".to_vec());
        assert_eq!(e.unwrap_err().raw_os_error(), Some(libc::EINVAL));
        // A well-formed request on a non-VFIO fd reaches the kernel and fails there.
        let mut ok = [0u8; 32];
        ok[..4].copy_from_slice(&32u32.to_ne_bytes());
        let e = s.ioctl_buf(fd, VFIO_DEVICE_GET_REGION_INFO, &mut ok);
        assert_eq!(e.unwrap_err().raw_os_error(), Some(libc::ENOTTY));
    }
}
